/* sim_forecast.h: the simulator's carbon provider ("sim"). It serves loaded
 * traces through the cs_provider interface the policy reads: the trace's
 * value as "current" at simulated time, and as forecast the trace plus
 * seeded noise: none (perfect), Gaussian white noise with sigma a share of
 * the trace's mean, or AR(1) noise with the same stationary sigma. The noise
 * is drawn once per trace row when the provider is made, so every forecast
 * of a given instant agrees and runs repeat exactly under a seed.
 * Thread-safe: yes once made (read-only).
 * Ownership: the traces are borrowed and must outlive the provider; the
 * provider is owned by the caller until handed to cs_signals_add_provider. */
#ifndef CS_SIM_FORECAST_H
#define CS_SIM_FORECAST_H

#include <stddef.h>
#include <stdint.h>

#include "carbon/signal.h"
#include "cmd/carbonshift/sim_trace.h"

typedef enum cs_sim_noise {
  CS_SIM_NOISE_NONE = 0, /* perfect forecast */
  CS_SIM_NOISE_GAUSS,    /* independent per row */
  CS_SIM_NOISE_AR1       /* e[i] = phi e[i-1] + sqrt(1 - phi^2) sigma z */
} cs_sim_noise;

typedef struct cs_sim_forecast_params {
  cs_sim_noise noise;
  double sigma_rel; /* standard deviation as a share of the trace's mean */
  double phi;       /* AR(1) coefficient per row, in [0, 1) */
  uint64_t seed;
} cs_sim_forecast_params;

/* A provider named "sim" serving `n` traces (distinct zones). CS_EINVAL on
 * a duplicate zone, a negative sigma or phi outside [0, 1). */
cs_err cs_sim_forecast_new(cs_sim_trace *const *traces, size_t n,
                           const cs_sim_forecast_params *p,
                           cs_provider **out) CS_MUST_USE;

/* The noisy forecast value of row i of trace k (for tests and plots). */
double cs_sim_forecast_value(const cs_provider *p, size_t k, size_t i);

/* Parses "perfect", "gauss:5%", "gauss:0.05", "ar1:10%" or
 * "ar1:10%:0.9" (phi after the second colon, default 0.9). */
cs_err cs_sim_forecast_parse(const char *s, cs_sim_forecast_params *out,
                             const char **expected) CS_MUST_USE;

#endif
