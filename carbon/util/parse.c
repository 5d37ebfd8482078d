#include "carbon/util/parse.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static cs_err fail(const char **expected, const char *form)
{
  if (expected)
    *expected = form;
  return CS_EINVAL;
}

cs_err cs_parse_int64(const char *s, int64_t *out, const char **expected)
{
  static const char form[] = "a whole number such as 8";
  if (!s || !*s || isspace((unsigned char)*s))
    return fail(expected, form);
  const char *p = s + (*s == '-');
  for (const char *q = p; *q; q++)
    if (!isdigit((unsigned char)*q))
      return fail(expected, form);
  if (!*p)
    return fail(expected, form);
  errno = 0;
  char *end;
  long long v = strtoll(s, &end, 10);
  if (errno || *end)
    return fail(expected, "a whole number within 64-bit range");
  *out = v;
  return CS_OK;
}

/* Reads a plain decimal number (digits, optional fraction, optional
 * exponent when allow_exp) at *p and advances *p past it. */
static bool scan_decimal(const char **p, bool allow_exp, double *out)
{
  const char *s = *p, *q = s;
  if (*q == '+' || *q == '-')
    q++;
  size_t digits = 0;
  while (isdigit((unsigned char)*q)) {
    q++;
    digits++;
  }
  if (*q == '.') {
    q++;
    while (isdigit((unsigned char)*q)) {
      q++;
      digits++;
    }
  }
  if (!digits)
    return false;
  if (allow_exp && (*q == 'e' || *q == 'E')) {
    const char *e = q + 1;
    if (*e == '+' || *e == '-')
      e++;
    if (isdigit((unsigned char)*e)) {
      while (isdigit((unsigned char)*e))
        e++;
      q = e;
    }
  }
  char tmp[64];
  size_t n = (size_t)(q - s);
  if (n >= sizeof(tmp))
    return false;
  memcpy(tmp, s, n);
  tmp[n] = '\0';
  errno = 0;
  char *end;
  double v = strtod(tmp, &end);
  if (errno == ERANGE || *end || !isfinite(v))
    return false;
  *out = v;
  *p = q;
  return true;
}

cs_err cs_parse_double(const char *s, double *out, const char **expected)
{
  static const char form[] = "a decimal number such as 1.2";
  if (!s)
    return fail(expected, form);
  const char *p = s;
  double v;
  if (!scan_decimal(&p, true, &v) || *p)
    return fail(expected, form);
  *out = v;
  return CS_OK;
}

cs_err cs_parse_duration(const char *s, double *seconds, const char **expected)
{
  static const char form[] =
      "a duration such as 36h, 90m or 1h30m (units s, m, h, d, w, y)";
  if (!s || !*s)
    return fail(expected, form);
  const char *p = s;
  double total = 0;
  while (*p) {
    double v;
    if (*p == '+' || *p == '-' || !scan_decimal(&p, false, &v))
      return fail(expected, form);
    double unit;
    switch (*p) {
    case 's':
      unit = 1;
      break;
    case 'm':
      unit = 60;
      break;
    case 'h':
      unit = 3600;
      break;
    case 'd':
      unit = 86400;
      break;
    case 'w':
      unit = 7 * 86400.0;
      break;
    case 'y':
      unit = 365 * 86400.0;
      break;
    default:
      return fail(expected, form);
    }
    p++;
    total += v * unit;
  }
  if (!(total > 0) || !isfinite(total) || total > CS_DURATION_MAX_S)
    return fail(expected, "a positive duration of at most 100y");
  *seconds = total;
  return CS_OK;
}

cs_err cs_parse_quantity(const char *s, double *out, const char **expected)
{
  static const char form[] =
      "a Kubernetes quantity such as 8, 500m, 1.5k or 256Gi";
  if (!s || !*s)
    return fail(expected, form);
  const char *p = s;
  double v;
  if (*p == '-' || !scan_decimal(&p, true, &v))
    return fail(expected, form);
  /* An exponent is the suffix, as in the API server's grammar: "1e3Ki"
   * or "1e3m" is no quantity. (So a suffix multiplies at most the 63
   * characters scan_decimal reads without one, which cannot overflow.) */
  bool exponent =
      memchr(s, 'e', (size_t)(p - s)) || memchr(s, 'E', (size_t)(p - s));
  if (exponent && *p)
    return fail(expected, form);
  /* A decimal suffix is read as the exponent it stands for, so that the
   * value is the double nearest the exact decimal (strtod rounds once):
   * "0.07k" is 70 and "1.001k" 1001, where multiplying by 1e3 gave
   * 70.00000000000001 and 1000.9999999999999, which no whole-number check
   * accepts. A binary suffix is a power of two, which multiplies exactly. */
  static const struct {
    const char *suffix;
    int exp10;   /* decimal: the power of ten */
    double mult; /* binary: the factor */
  } suffixes[] = {
      {"", 0, 0},
      {"m", -3, 0},
      {"k", 3, 0},
      {"M", 6, 0},
      {"G", 9, 0},
      {"T", 12, 0},
      {"P", 15, 0},
      {"E", 18, 0},
      {"Ki", 0, 1024.0},
      {"Mi", 0, 1048576.0},
      {"Gi", 0, 1073741824.0},
      {"Ti", 0, 1099511627776.0},
      {"Pi", 0, 1125899906842624.0},
      {"Ei", 0, 1152921504606846976.0},
  };
  for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
    if (strcmp(p, suffixes[i].suffix) != 0)
      continue;
    if (suffixes[i].mult) {
      *out = v * suffixes[i].mult;
      return CS_OK;
    }
    if (suffixes[i].exp10) {
      /* The number is at most 63 characters without an exponent (above). */
      char tmp[80];
      snprintf(tmp, sizeof(tmp), "%.*se%d", (int)(p - s), s, suffixes[i].exp10);
      v = strtod(tmp, NULL);
    }
    *out = v;
    return CS_OK;
  }
  return fail(expected, form);
}

cs_err cs_parse_mass(const char *s, double *grams, const char **expected)
{
  static const char form[] = "a mass of CO2e with a unit: 500g, 12.5kg or 1.2t";
  if (!s)
    return fail(expected, form);
  const char *p = s;
  double v;
  if (*p == '-' || *p == '+' || !scan_decimal(&p, false, &v))
    return fail(expected, form);
  double mult;
  if (strcmp(p, "g") == 0)
    mult = 1;
  else if (strcmp(p, "kg") == 0)
    mult = 1e3;
  else if (strcmp(p, "t") == 0)
    mult = 1e6;
  else
    return fail(expected, form);
  if (!(v > 0))
    return fail(expected, "a mass greater than zero");
  *grams = v * mult;
  return CS_OK;
}

/* Reads exactly n digits. */
static bool digits(const char **p, int n, int *out)
{
  int v = 0;
  for (int i = 0; i < n; i++) {
    if (!isdigit((unsigned char)(*p)[i]))
      return false;
    v = v * 10 + ((*p)[i] - '0');
  }
  *p += n;
  *out = v;
  return true;
}

static bool valid_date(int y, int mo, int d)
{
  static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (y < 1970 || y > 9999 || mo < 1 || mo > 12 || d < 1)
    return false;
  int max = mdays[mo - 1];
  if (mo == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
    max = 29;
  return d <= max;
}

static int64_t to_unix(int y, int mo, int d, int h, int mi, int sec)
{
  struct tm tm = {0};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = sec;
  return (int64_t)timegm(&tm);
}

cs_err cs_parse_rfc3339(const char *s, int64_t *unix_seconds,
                        const char **expected)
{
  static const char form[] = "an RFC 3339 time such as 2026-11-23T06:00:00Z or "
                             "2026-11-23T07:00:00+01:00";
  if (!s)
    return fail(expected, form);
  const char *p = s;
  int y, mo, d, h, mi, sec = 0;
  if (!digits(&p, 4, &y) || *p++ != '-' || !digits(&p, 2, &mo) || *p++ != '-' ||
      !digits(&p, 2, &d) || (*p != 'T' && *p != 't' && *p != ' '))
    return fail(expected, form);
  p++;
  if (!digits(&p, 2, &h) || *p++ != ':' || !digits(&p, 2, &mi))
    return fail(expected, form);
  if (*p == ':') {
    p++;
    if (!digits(&p, 2, &sec))
      return fail(expected, form);
    if (*p == '.') {
      p++;
      if (!isdigit((unsigned char)*p))
        return fail(expected, form);
      while (isdigit((unsigned char)*p))
        p++;
    }
  }
  if (!valid_date(y, mo, d) || h > 23 || mi > 59 || sec > 60)
    return fail(expected, form);
  int offset = 0;
  if (*p == 'Z' || *p == 'z') {
    p++;
  } else if (*p == '+' || *p == '-') {
    int sign = *p == '-' ? -1 : 1, oh, om;
    p++;
    if (!digits(&p, 2, &oh) || *p++ != ':' || !digits(&p, 2, &om) || oh > 23 ||
        om > 59)
      return fail(expected, form);
    offset = sign * (oh * 3600 + om * 60);
  } else {
    return fail(expected, form);
  }
  if (*p)
    return fail(expected, form);
  *unix_seconds = to_unix(y, mo, d, h, mi, sec > 59 ? 59 : sec) - offset;
  return CS_OK;
}

cs_err cs_parse_date(const char *s, int64_t *unix_seconds,
                     const char **expected)
{
  static const char form[] = "a date as YYYY-MM or YYYY-MM-DD";
  if (!s)
    return fail(expected, form);
  const char *p = s;
  int y, mo, d = 1;
  if (!digits(&p, 4, &y) || *p++ != '-' || !digits(&p, 2, &mo))
    return fail(expected, form);
  if (*p == '-') {
    p++;
    if (!digits(&p, 2, &d))
      return fail(expected, form);
  }
  if (*p || !valid_date(y, mo, d))
    return fail(expected, form);
  *unix_seconds = to_unix(y, mo, d, 0, 0, 0);
  return CS_OK;
}

void cs_format_rfc3339(int64_t unix_seconds, char out[static 21])
{
  time_t t = (time_t)unix_seconds;
  struct tm tm;
  /* strftime leaves out undefined when the text does not fit: a year
   * past 9999 (a trace or request can carry one). */
  if (!gmtime_r(&t, &tm) || !strftime(out, 21, "%Y-%m-%dT%H:%M:%SZ", &tm))
    snprintf(out, 21, "invalid-time");
}

void cs_format_duration(double seconds, char out[static 32])
{
  if (!(seconds >= 0) || seconds > 1e12) {
    snprintf(out, 32, "?");
    return;
  }
  int64_t s = llround(seconds);
  int64_t d = s / 86400, h = s % 86400 / 3600, m = s % 3600 / 60, sec = s % 60;
  size_t n = 0;
  if (d)
    n += (size_t)snprintf(out + n, 32 - n, "%lldd", (long long)d);
  if (h)
    n += (size_t)snprintf(out + n, 32 - n, "%lldh", (long long)h);
  if (m)
    n += (size_t)snprintf(out + n, 32 - n, "%lldm", (long long)m);
  if (sec || n == 0)
    snprintf(out + n, 32 - n, "%llds", (long long)sec);
}

size_t cs_edit_distance(const char *a, const char *b)
{
  size_t la = strlen(a), lb = strlen(b);
  if (la > 64 || lb > 64)
    return CS_EDIT_FAR;
  size_t row[65];
  for (size_t j = 0; j <= lb; j++)
    row[j] = j;
  for (size_t i = 1; i <= la; i++) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= lb; j++) {
      size_t up = row[j];
      int same =
          tolower((unsigned char)a[i - 1]) == tolower((unsigned char)b[j - 1]);
      size_t best = diag + (same ? 0 : 1);
      if (row[j] + 1 < best)
        best = row[j] + 1;
      if (row[j - 1] + 1 < best)
        best = row[j - 1] + 1;
      row[j] = best;
      diag = up;
    }
  }
  return row[lb];
}

static const char *last_segment(const char *s)
{
  const char *d = strrchr(s, '.');
  return d ? d + 1 : s;
}

const char *cs_closest_name(const char *s, const char *const *names, size_t n)
{
  const char *best = NULL;
  size_t bestd = SIZE_MAX;
  for (size_t i = 0; i < n; i++) {
    size_t d = cs_edit_distance(s, names[i]);
    size_t d2 = cs_edit_distance(last_segment(s), last_segment(names[i])) + 1;
    if (d2 < d)
      d = d2;
    if (d < bestd) {
      bestd = d;
      best = names[i];
    }
  }
  size_t limit = strlen(s) / 3;
  if (limit < 2)
    limit = 2;
  return bestd <= limit ? best : NULL;
}
