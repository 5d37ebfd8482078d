/* file.h: a carbon provider that replays recorded traces, one file per
 * zone, as current value and forecast (the forecast is the recorded future:
 * a perfect forecast, for demos, tests and the simulator). Formats, detected
 * from the header line:
 *   - the Electricity Maps hourly export (Datetime (UTC), ..., Carbon
 *     Intensity gCO₂eq/kWh (direct), ... (LCA), ..., Data Estimated, ...),
 *     average, either column;
 *   - "Time,Carbon Intensity" in gCO2/kWh, average;
 *   - WattTime "time,<region>" MOER in lbs CO2/MWh, marginal (converted).
 * Times are UTC ("YYYY-MM-DD hh:mm:ss" or RFC 3339). With replay_from set,
 * service time `now` reads the trace at replay_from + (now - start), and
 * answers carry service times, so a run is repeatable whatever the date.
 * Thread-safe: yes; traces are loaded once in cs_file_new and read-only.
 * Ownership: options are read during cs_file_new only; the provider belongs
 * to the caller until handed to cs_signals_add_provider. */
#ifndef CS_FILE_H
#define CS_FILE_H

#include "carbon/signal.h"

typedef struct cs_file_trace {
  const char *zone;
  const char *path;
  const char *column; /* Electricity Maps export: "lca" (NULL) or "direct" */
} cs_file_trace;

typedef struct cs_file_opts {
  const cs_file_trace *traces;
  size_t ntraces;
  int64_t replay_from; /* trace instant shown at `start`; 0: no replay */
  int64_t start;       /* service start (Unix s); 0: now at cs_file_new */
} cs_file_opts;

/* Loads every trace (CS_EIO, CS_EPARSE, CS_EINVAL with `err` naming the
 * file, line, column and value). */
cs_err cs_file_new(const cs_file_opts *o, cs_provider **out, char *err,
                   size_t errcap) CS_MUST_USE;

/* Loads one trace file into a series in g/kWh (trace times). `estimated`
 * (optional) gets a malloc'ed flag per point (NULL when the format has no
 * such column). */
cs_err cs_file_load(const char *path, const char *column, cs_series *out,
                    bool **estimated, char *err, size_t errcap) CS_MUST_USE;

#endif
