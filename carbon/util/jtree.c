#include "carbon/util/jtree.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "carbon/util/alloc.h"

/* Rewrites, in place, every escaped NUL in the strings of s[0..len) as
 * \ufffd, which has the same length. An escape is skipped whole, so the
 * "\u0000" text of an escaped backslash ("\\u0000") is left alone. Text
 * outside strings holds no escapes in valid JSON and is not touched. */
static void show_nuls(char *s, size_t len)
{
  bool in_string = false;
  for (size_t i = 0; i < len; i++) {
    if (!in_string) {
      in_string = s[i] == '"';
    } else if (s[i] == '"') {
      in_string = false;
    } else if (s[i] == '\\' && i + 1 < len) {
      if (s[i + 1] == 'u' && len - i >= 6 && memcmp(s + i + 2, "0000", 4) == 0)
        memcpy(s + i + 2, "fffd", 4);
      i++; /* the escaped character starts or ends nothing */
    }
  }
}

cJSON *cs_jtree_parse(const char *json, size_t len, const char **end)
{
  /* The common case holds no "u0000" at all: parsed as it is. */
  const char *text = json;
  char *copy = NULL;
  if (len >= 6 && memmem(json, len, "\\u0000", 6)) {
    copy = cs_malloc(len);
    memcpy(copy, json, len);
    show_nuls(copy, len);
    text = copy;
  }
  const char *stop = text;
  cJSON *tree = cJSON_ParseWithLengthOpts(text, len, &stop, false);
  if (!stop)
    stop = text;
  if (end) {
    *end = json + (stop - text);
  } else if (tree) {
    /* One whole value: "{...}garbage" is no more a response than a cut
     * one, though cJSON alone would take its first value. */
    while (stop < text + len &&
           (*stop == ' ' || *stop == '\t' || *stop == '\r' || *stop == '\n'))
      stop++;
    if (stop != text + len) {
      cJSON_Delete(tree);
      tree = NULL;
    }
  }
  free(copy);
  return tree;
}
