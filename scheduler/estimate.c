#include "scheduler/estimate.h"

#include <math.h>
#include <string.h>

/* Embodied carbon of the whole node: the annotation when present, else a
 * server base plus one card's figure per card. n->gpus counts devices: an
 * MI250X card shows two. */
static double node_embodied_kg(const cs_estimate_params *p,
                               const cs_node_facts *n)
{
  if (n->embodied_kg > 0)
    return n->embodied_kg;
  double card = n->gpu && n->gpu->embodied_kg > 0 ? n->gpu->embodied_kg
                                                  : p->gpu_embodied_kg;
  return p->server_embodied_kg +
         card * n->gpus / cs_gpu_devices_per_card(n->gpu);
}

void cs_estimate_job(const cs_estimate_params *p, const cs_pod_facts *pod,
                     const cs_node_facts *node, double intensity, int64_t now,
                     cs_estimate *out)
{
  memset(out, 0, sizeof(*out));
  out->intensity = intensity;
  if (!node->gpu) {
    out->unknown = "GPU model";
    return;
  }
  if (!(node->gpus > 0)) {
    out->unknown = "GPU count";
    return;
  }
  if (!p->reference_gpu) {
    out->unknown = "reference GPU";
    return;
  }
  /* 0 also when only one of the two has a measured relativeThroughput:
   * no ratio of figures in different units means anything. */
  double speed = cs_gpu_speed_vs(node->gpu, p->reference_gpu);
  if (!(speed > 0)) {
    out->unknown = (node->gpu->relative_throughput > 0) !=
                           (p->reference_gpu->relative_throughput > 0)
                       ? "GPU throughput (relativeThroughput is set for only "
                         "one of this GPU and the reference GPU)"
                       : "GPU throughput";
    return;
  }

  out->runtime_s = pod->duration_s / speed;
  if (!(out->runtime_s <= CS_ESTIMATE_RUNTIME_MAX_S)) {
    out->runtime_s = 0;
    out->unknown = "GPU throughput (runtime out of range)";
    return;
  }
  double hours = out->runtime_s / 3600.0;
  out->energy_kwh =
      pod->gpus * cs_gpu_device_power_w(node->gpu) / 1000.0 * hours * node->pue;

  /* The share of the node's embodied carbon the job reserves: the GPUs it
   * takes and the time it holds them, over the hardware's effective life.
   * Hardware older than its expected life has, by the time the job ends,
   * served longer than planned: its life so far is the divisor, so the share
   * keeps falling but never reaches zero. */
  out->node_embodied_kg = node_embodied_kg(p, node);
  double life = node->lifetime_s;
  if (node->installed_at > 0) {
    double age_at_end = (double)(now - node->installed_at) + out->runtime_s;
    if (age_at_end > life)
      life = age_at_end;
  }
  out->effective_lifetime_s = life;
  double share = pod->gpus / node->gpus;
  if (share > 1)
    share = 1;
  out->embodied_g =
      life > 0 ? out->node_embodied_kg * 1000.0 * share * out->runtime_s / life
               : 0;
  out->sized = true;
  cs_estimate_set_intensity(out, intensity);
}

void cs_estimate_set_intensity(cs_estimate *e, double intensity)
{
  e->intensity = intensity;
  e->known = false;
  e->operational_g = e->total_g = 0;
  if (!e->sized)
    return;
  if (!(intensity >= 0)) {
    e->unknown = "grid intensity";
    return;
  }
  e->operational_g = e->energy_kwh * intensity;
  e->total_g = e->operational_g + e->embodied_g;
  e->known = isfinite(e->total_g);
  e->unknown = e->known ? NULL : "estimate out of range";
}
