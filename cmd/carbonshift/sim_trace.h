/* sim_trace.h: a carbon-intensity trace loaded for the simulator from a CSV
 * file, in either format of ../shared/data/carbon/ (Let's Wait Awhile
 * `Time,Carbon Intensity`, or the Electricity Maps hourly export, whose LCA
 * column is used), held as a step function with prefix sums so that the
 * emissions of any run are found in O(log n). A row holds until the next
 * for at most CS_SIM_TRACE_HOLD_STEPS steps; a longer spacing is a hole,
 * which no covered interval meets.
 * Thread-safe: a loaded trace is read-only plain data; any thread may read it.
 * Ownership: cs_sim_trace_load hands the caller a trace (cs_sim_trace_free);
 * the path is borrowed. */
#ifndef CS_SIM_TRACE_H
#define CS_SIM_TRACE_H

#include <stddef.h>
#include <stdint.h>

#include "carbon/signal.h"
#include "carbon/util/error.h"

/* The hard cap on a trace file and on its number of rows. */
#define CS_SIM_TRACE_MAX_BYTES (64u << 20)
#define CS_SIM_TRACE_MAX_ROWS 2000000
/* A row holds until the next one, but across at most this many steps: a
 * longer spacing is a hole, where the trace says nothing. Two steps hold
 * across one missing row (lwa-2020/DE.csv has two such 30-minute spacings
 * among its 15-minute rows); a day-long outage is a hole. */
#define CS_SIM_TRACE_HOLD_STEPS 2

typedef struct cs_sim_trace {
  char zone[CS_ZONE_MAX];
  int64_t *at; /* row times, strictly increasing (Unix s) */
  double *g;   /* gCO2e/kWh in force from at[i] to at[i + 1] */
  double *cum; /* cum[i]: integral of g from at[0] to at[i], g*s/kWh */
  size_t len;
  int64_t step;     /* the most common spacing; the last row holds this long */
  int64_t max_hold; /* CS_SIM_TRACE_HOLD_STEPS x step */
  size_t *holes;    /* holes[i]: how many of the spacings before row i are
                       holes (longer than max_hold) */
  size_t nholes;    /* holes in the whole trace */
  size_t longest_hole_row; /* the row before the longest hole (if any) */
  double mean; /* time-weighted mean over the trace, its holes left out */
} cs_sim_trace;

/* Loads `path` as the trace of `zone` (or, when zone is NULL or empty, the
 * file name without directory and extension: ".../DE.csv" is zone "DE").
 * The header must be one of the documented shapes (docs/benchmarks.md,
 * "Carbon"): a time column first, one intensity column in gCO2(e/eq)/kWh or
 * one marked (LCA); a header with another unit or an ambiguous one is
 * refused.
 * CS_EPARSE with a message naming the line and field in `err`; CS_EIO when
 * the file cannot be read; CS_ETOOBIG over the caps. */
cs_err cs_sim_trace_load(const char *path, const char *zone, cs_sim_trace **out,
                         char *err, size_t errcap) CS_MUST_USE;
/* A trace from arrays (copied), for tests and generated scenarios. */
cs_err cs_sim_trace_from(const char *zone, const int64_t *at, const double *g,
                         size_t len, int64_t step,
                         cs_sim_trace **out) CS_MUST_USE;
void cs_sim_trace_free(cs_sim_trace *t);

/* Reads a whole regular file of at most `cap` bytes, NUL-terminated (the
 * simulator's readers share it; carbon/util/readfile.h). On failure err
 * says "PATH: cannot be read: <why>" or "PATH: over the N MiB cap on
 * <kind>" (kind: "a trace file"). */
cs_err cs_sim_trace_read_file(const char *path, size_t cap, const char *kind,
                              char **data, size_t *len, char *err,
                              size_t errcap) CS_MUST_USE;

/* The most fields a line of the simulator's CSV files may have. */
#define CS_SIM_CSV_MAX_FIELDS 16

/* Splits one CSV line (without its line end) in place into at most
 * CS_SIM_CSV_MAX_FIELDS fields, quoted as RFC 4180 says: a field in double
 * quotes may hold commas, "" in it stands for one quote, and the quotes are
 * removed. Returns the number of fields, or 0 with `*why` saying what is
 * wrong (a quote inside an unquoted field, an unterminated quote, text
 * after a closing quote, too many fields). The simulator's CSV readers
 * share it, and refuse a row whose field count is not the header's. */
size_t cs_sim_trace_split_csv(char *line, char **fields, const char **why);

/* The end of the CSV record that starts at `p`: the line feed that closes
 * it, or the text's terminating NUL. A line feed inside a quoted field is
 * part of the field, as RFC 4180 says (the simulator's CSV writers quote
 * one so); `*breaks` gets how many the record holds, so that a reader can
 * keep counting lines. A record with an unterminated quote runs to the end
 * of the text, where cs_sim_trace_split_csv refuses it. */
char *cs_sim_csv_record_end(char *p, size_t *breaks);

/* The trace's end: the last row's time plus `step`. */
int64_t cs_sim_trace_end(const cs_sim_trace *t);
/* Whether [from, to) lies within the trace and meets none of its holes
 * (from == to: whether the instant does). */
int cs_sim_trace_covers(const cs_sim_trace *t, int64_t from, int64_t to);
/* Whether [from, to) meets a hole of the trace (from == to: whether the
 * instant lies in one); times before the start or past the end are not
 * holes (cs_sim_trace_covers checks those). */
int cs_sim_trace_meets_hole(const cs_sim_trace *t, int64_t from, int64_t to);
/* The integral of intensity over [from, to) in g*s/kWh (divide by the
 * length for the mean). The caller checks coverage first (holes too). */
double cs_sim_trace_integral(const cs_sim_trace *t, int64_t from, int64_t to);
/* The row index in force at t (0 before the start). */
size_t cs_sim_trace_index(const cs_sim_trace *t, int64_t at);

#endif
