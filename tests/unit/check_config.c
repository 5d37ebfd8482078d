/* Tests of cmd/carbonshift/config: defaults, the four layers and their
 * sources, every type's bad values, secrets, the docs table, and the built
 * binary's --print-config and exit status (CS_BIN). */
#include <check.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "carbon/util/alloc.h"
#include "carbon/util/buf.h"
#include "cmd/carbonshift/config.h"
#include "tests/unit/tls_testutil.h"

static char tmpdir[64];

static void setup(void)
{
  snprintf(tmpdir, sizeof(tmpdir), "/tmp/check_config.XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void teardown(void)
{
  char *cmd = cs_asprintf("rm -rf '%s'", tmpdir);
  ck_assert_int_eq(system(cmd), 0);
  free(cmd);
}

/* Writes `text` to tmpdir/name and returns the path (caller frees). */
static char *write_file(const char *name, const char *text)
{
  char *path = cs_asprintf("%s/%s", tmpdir, name);
  FILE *f = fopen(path, "w");
  ck_assert_ptr_nonnull(f);
  fputs(text, f);
  ck_assert_int_eq(fclose(f), 0);
  return path;
}

/* Loads with argv-style flags (NULL-terminated) and env; returns the result
 * and fills errors (caller frees the buffer). */
static cs_err load(const char *const *args, char *const *env, cs_config **out,
                   cs_buf *errors, cs_buf *warnings)
{
  cs_config_flags *f = cs_config_flags_new();
  int argc = 0;
  while (args && args[argc])
    argc++;
  char **argv = cs_calloc((size_t)argc + 1, sizeof(char *));
  for (int i = 0; i < argc; i++)
    argv[i] = (char *)args[i];
  for (int i = 0; i < argc;) {
    bool taken;
    char err[256];
    ck_assert_int_eq(
        cs_config_flags_take(f, argc, argv, &i, &taken, err, sizeof(err)),
        CS_OK);
    ck_assert_msg(taken, "flag %s not taken", argv[i]);
  }
  cs_buf_init(errors, 1 << 20);
  cs_err rc = cs_config_load(f, env, out, errors, warnings);
  ck_assert_ptr_nonnull(*out);
  if (rc != CS_OK) {
    cs_config_free(*out);
    *out = NULL;
  }
  cs_config_flags_free(f);
  free(argv);
  return rc;
}

static char *const no_env[] = {NULL};

#define ASSERT_HAS(text, needle)                                               \
  ck_assert_msg(strstr((text) ? (text) : "", (needle)) != NULL,                \
                "expected to find\n  %s\nin\n%s", (needle),                    \
                (text) ? (text) : "(null)")

START_TEST(test_config_defaults_values)
{
  cs_config *c = cs_config_defaults();
  ck_assert_str_eq(c->listen, "127.0.0.1:8080");
  ck_assert_str_eq(c->path_prefix, "");
  ck_assert_str_eq(c->tls_cert_file, "");
  ck_assert_int_eq(c->http_max_body_bytes, 128 << 20);
  ck_assert_int_eq(c->http_max_header_bytes, 64 << 10);
  ck_assert_int_eq(c->http_max_connections, 1024);
  ck_assert_int_eq(c->http_threads, 0);
  ck_assert_double_eq(c->http_connection_timeout_s, 30);
  ck_assert_double_eq(c->http_request_timeout_s, 10);
  ck_assert_double_eq(c->shutdown_grace_period_s, 20);
  ck_assert_int_eq(c->log_verbosity, 0);
  ck_assert_str_eq(c->estimate_reference_gpu, "A100-SXM4-80GB");
  ck_assert_double_eq(c->estimate_default_duration_s, 3600);
  ck_assert_double_eq(c->estimate_server_embodied_kg, 1000);
  ck_assert_double_eq(c->estimate_gpu_embodied_kg, 150);
  ck_assert_double_eq(c->nodes_default_lifetime_s, 6 * 365 * 86400.0);
  ck_assert_double_eq_tol(c->nodes_default_pue, 1.2, 1e-12);
  ck_assert_str_eq(c->nodes_default_zone, "");
  ck_assert_uint_eq(c->nzones_regions, 0);
  ck_assert_uint_eq(c->ngpus, 0);
  ck_assert_int_eq(c->carbon_signal_type, 0);
  ck_assert_str_eq(c->electricitymaps_token, "");
  ck_assert_str_eq(cs_config_source(c, "listen"), "default");
  ck_assert_str_eq(cs_config_source(c, "gpus"), "default");
  ck_assert_ptr_null(cs_config_source(c, "nope"));
  cs_config_free(c);
  cs_config_free(NULL);
}
END_TEST

START_TEST(test_config_load_precedence_file_env_flag)
{
  char *file = write_file("c.json", "{\n"
                                    "  \"listen\": \"0.0.0.0:9000\",\n"
                                    "  \"pathPrefix\": \"/cs\",\n"
                                    "  \"http\": {\"threads\": 2, "
                                    "\"maxBodyBytes\": \"1Mi\",\n"
                                    "    \"requestTimeout\": \"5s\"},\n"
                                    "  \"log.verbosity\": 1\n"
                                    "}\n");
  char *cfg = cs_asprintf("CARBONSHIFT_CONFIG=%s", file);
  char *const env[] = {cfg, "CARBONSHIFT_HTTP_THREADS=3",
                       "CARBONSHIFT_HTTP_MAX_BODY_BYTES=2Mi",
                       "CARBONSHIFT_NODES_DEFAULT_PUE=1.5", NULL};
  const char *args[] = {"--set", "http.maxBodyBytes=4194304", "-v",
                        "4",     "--listen=127.0.0.1:0",      NULL};
  cs_config *c;
  cs_buf errors;
  ck_assert_int_eq(load(args, env, &c, &errors, NULL), CS_OK);
  char *fsrc = cs_asprintf("file %s", file);
  ck_assert_str_eq(c->listen, "127.0.0.1:0");
  ck_assert_str_eq(cs_config_source(c, "listen"), "flag --listen");
  ck_assert_str_eq(c->path_prefix, "/cs");
  ck_assert_str_eq(cs_config_source(c, "pathPrefix"), fsrc);
  ck_assert_double_eq(c->http_request_timeout_s, 5);
  ck_assert_str_eq(cs_config_source(c, "http.requestTimeout"), fsrc);
  ck_assert_int_eq(c->http_threads, 3);
  ck_assert_str_eq(cs_config_source(c, "http.threads"),
                   "env CARBONSHIFT_HTTP_THREADS");
  ck_assert_int_eq(c->http_max_body_bytes, 4 << 20);
  ck_assert_str_eq(cs_config_source(c, "http.maxBodyBytes"),
                   "flag --set http.maxBodyBytes");
  ck_assert_int_eq(c->log_verbosity, 4);
  ck_assert_str_eq(cs_config_source(c, "log.verbosity"), "flag --v");
  ck_assert_double_eq_tol(c->nodes_default_pue, 1.5, 1e-12);
  ck_assert_str_eq(cs_config_source(c, "http.connectionTimeout"), "default");
  cs_config_free(c);
  cs_buf_free(&errors);

  /* --config wins over CARBONSHIFT_CONFIG. */
  char *other = write_file("d.json", "{\"http\": {\"threads\": 7}}");
  const char *args2[] = {"--config", other, NULL};
  char *const env2[] = {cfg, NULL};
  ck_assert_int_eq(load(args2, env2, &c, &errors, NULL), CS_OK);
  ck_assert_int_eq(c->http_threads, 7);
  ck_assert_str_eq(c->listen, "127.0.0.1:8080");
  cs_config_free(c);
  cs_buf_free(&errors);
  free(other);
  free(fsrc);
  free(cfg);
  free(file);
}
END_TEST

START_TEST(test_config_load_bad_values_all_reported)
{
  char *const env[] = {"CARBONSHIFT_HTTP_MAX_BODY_BYTES=12x",
                       "CARBONSHIFT_HTTP_MAX_HEADER_BYTES=1.5m",
                       "CARBONSHIFT_HTTP_MAX_CONNECTIONS=0",
                       "CARBONSHIFT_HTTP_THREADS=two",
                       "CARBONSHIFT_HTTP_CONNECTION_TIMEOUT=5 minutes",
                       "CARBONSHIFT_HTTP_REQUEST_TIMEOUT=2h",
                       "CARBONSHIFT_NODES_DEFAULT_PUE=0.9",
                       "CARBONSHIFT_ESTIMATE_SERVER_EMBODIED_KG=lots",
                       "CARBONSHIFT_CARBON_SIGNAL_TYPE=median",
                       "CARBONSHIFT_LISTEN=localhost",
                       "CARBONSHIFT_PATH_PREFIX=cs/",
                       "CARBONSHIFT_NODES_DEFAULT_ZONE=DE FR",
                       "CARBONSHIFT_ZONES_REGIONS={\"eu-west-1\": ",
                       "CARBONSHIFT_ELECTRICITYMAPS_URL=ftp://x",
                       "CARBONSHIFT_UKGRID_URL=https://:443/",
                       NULL};
  cs_config *c = (cs_config *)1;
  cs_buf errors;
  ck_assert_int_eq(load(NULL, env, &c, &errors, NULL), CS_EINVAL);
  ck_assert_ptr_null(c);
  const char *e = errors.data;
  ASSERT_HAS(e, "config: http.maxBodyBytes = \"12x\" (env "
                "CARBONSHIFT_HTTP_MAX_BODY_BYTES): expected a size in bytes "
                "such as 67108864 or 64Mi, between 1Ki and 1Gi\n");
  ASSERT_HAS(e, "config: http.maxHeaderBytes = \"1.5m\" (env "
                "CARBONSHIFT_HTTP_MAX_HEADER_BYTES): expected a size in "
                "bytes");
  ASSERT_HAS(e, "config: http.maxConnections = \"0\" (env "
                "CARBONSHIFT_HTTP_MAX_CONNECTIONS): expected a whole number "
                "between 1 and 100000\n");
  ASSERT_HAS(e, "config: http.threads = \"two\" (env "
                "CARBONSHIFT_HTTP_THREADS): expected a whole number between "
                "0 and 1024\n");
  ASSERT_HAS(e, "config: http.connectionTimeout = \"5 minutes\" (env "
                "CARBONSHIFT_HTTP_CONNECTION_TIMEOUT): expected a duration "
                "such as 30s, 5m or 1h30m (units s, m, h, d, w, y), between "
                "1s and 1h\n");
  ASSERT_HAS(e, "config: http.requestTimeout = \"2h\" (env "
                "CARBONSHIFT_HTTP_REQUEST_TIMEOUT): expected a duration");
  ASSERT_HAS(e, "between 0.1s and 10m\n");
  ASSERT_HAS(e, "config: nodes.defaultPue = \"0.9\" (env "
                "CARBONSHIFT_NODES_DEFAULT_PUE): expected a number between 1 "
                "and 3\n");
  ASSERT_HAS(e, "config: estimate.serverEmbodiedKg = \"lots\" (env "
                "CARBONSHIFT_ESTIMATE_SERVER_EMBODIED_KG): expected a number "
                "between 0 and 100000\n");
  ASSERT_HAS(e, "config: carbon.signalType = \"median\" (env "
                "CARBONSHIFT_CARBON_SIGNAL_TYPE): expected one of average, "
                "marginal\n");
  ASSERT_HAS(e, "config: listen = \"localhost\" (env CARBONSHIFT_LISTEN): "
                "expected an address as HOST:PORT");
  ASSERT_HAS(e, "config: pathPrefix = \"cs/\" (env "
                "CARBONSHIFT_PATH_PREFIX): expected empty, or a URL path");
  ASSERT_HAS(e, "config: nodes.defaultZone = \"DE FR\" (env "
                "CARBONSHIFT_NODES_DEFAULT_ZONE): expected empty, or a grid "
                "zone id");
  ASSERT_HAS(e, "config: zones.regions = \"{\\\"eu-west-1\\\": \" (env "
                "CARBONSHIFT_ZONES_REGIONS): expected a JSON object; invalid "
                "JSON at offset 13\n");
  ASSERT_HAS(e, "config: electricitymaps.url = \"ftp://x\" (env "
                "CARBONSHIFT_ELECTRICITYMAPS_URL): not an http(s) URL, "
                "expected an http:// or "
                "https:// URL");
  ASSERT_HAS(e, "config: ukgrid.url = \"https://:443/\" (env "
                "CARBONSHIFT_UKGRID_URL): no host after the scheme, expected "
                "an http:// or https:// URL");
  /* Fifteen bad variables, fifteen lines. */
  size_t lines = 0;
  for (const char *p = e; *p; p++)
    lines += *p == '\n';
  ck_assert_uint_eq(lines, 15);
  cs_buf_free(&errors);
}
END_TEST

/* A string setting over CS_CONFIG_STRING_MAX is refused for its length,
 * said as such; a secret's value is still not shown. */
START_TEST(test_config_load_long_string_says_length)
{
  char *tok = calloc(1, 5001);
  memset(tok, 'k', 5000);
  char *tok_env = cs_asprintf("CARBONSHIFT_ELECTRICITYMAPS_TOKEN=%s", tok);
  char *const env[] = {tok_env, NULL};
  cs_config *c = NULL;
  cs_buf errors;
  ck_assert_int_eq(load(NULL, env, &c, &errors, NULL), CS_EINVAL);
  ck_assert_str_eq(errors.data,
                   "config: electricitymaps.token = <redacted> (env "
                   "CARBONSHIFT_ELECTRICITYMAPS_TOKEN): is 5000 bytes long, "
                   "expected a secret string of at most 4096 bytes\n");
  cs_buf_free(&errors);
  /* At the limit it is taken. */
  tok[4096] = '\0';
  free(tok_env);
  tok_env = cs_asprintf("CARBONSHIFT_ELECTRICITYMAPS_TOKEN=%s", tok);
  char *const at_limit[] = {tok_env, NULL};
  ck_assert_int_eq(load(NULL, at_limit, &c, &errors, NULL), CS_OK);
  ck_assert_uint_eq(strlen(c->electricitymaps_token), 4096);
  cs_config_free(c);
  cs_buf_free(&errors);
  free(tok_env);
  free(tok);
}
END_TEST

START_TEST(test_config_load_file_wrong_types)
{
  char *file = write_file(
      "c.json", "{\"listen\": 8080, \"http\": {\"threads\": 2.5, "
                "\"maxConnections\": \"10\", \"connectionTimeout\": 30},"
                " \"nodes\": {\"defaultPue\": \"1.1\"},"
                " \"carbon\": {\"signalType\": true}, \"zones\": [],"
                " \"estimate\": {\"serverEmbodiedKg\": 1e400}}");
  const char *args[] = {"--config", file, NULL};
  cs_config *c;
  cs_buf errors;
  ck_assert_int_eq(load(args, no_env, &c, &errors, NULL), CS_EINVAL);
  char *src = cs_asprintf("(file %s)", file);
  const char *e = errors.data;
  char *want =
      cs_asprintf("config: listen = 8080 %s: expected an address", src);
  ASSERT_HAS(e, want);
  free(want);
  want = cs_asprintf("config: http.threads = 2.5 %s: expected a whole number "
                     "between 0 and 1024\n",
                     src);
  ASSERT_HAS(e, want);
  free(want);
  want = cs_asprintf("config: http.maxConnections = \"10\" %s: expected a "
                     "whole number",
                     src);
  ASSERT_HAS(e, want);
  free(want);
  want = cs_asprintf("config: http.connectionTimeout = 30 %s: expected a "
                     "duration",
                     src);
  ASSERT_HAS(e, want);
  free(want);
  want = cs_asprintf("config: nodes.defaultPue = \"1.1\" %s: expected a "
                     "number between 1 and 3\n",
                     src);
  ASSERT_HAS(e, want);
  free(want);
  want = cs_asprintf("config: carbon.signalType = true %s: expected one of "
                     "average, marginal\n",
                     src);
  ASSERT_HAS(e, want);
  free(want);
  want = cs_asprintf("config: unknown setting \"zones\" %s", src);
  ASSERT_HAS(e, want);
  free(want);
  /* An overflowed number is not shown as the null cJSON would print. */
  want = cs_asprintf("config: estimate.serverEmbodiedKg = <a number beyond "
                     "the range of a double> %s: expected a number between 0 "
                     "and 100000\n",
                     src);
  ASSERT_HAS(e, want);
  free(want);
  free(src);
  cs_buf_free(&errors);
  free(file);
}
END_TEST

/* Found by fuzz_config: a key holding a line break split its problem over
 * two lines, so the "one line per problem" contract broke. Keys and values
 * now show control bytes escaped. */
START_TEST(test_config_load_file_line_break_in_key_one_line)
{
  char *file = write_file("c.json", "{\"li\\nsten\": \"x\", \"zones\": "
                                    "{\"regions\": {\"a\\nb\": \"D\\rE\"}}}");
  const char *args[] = {"--config", file, NULL};
  cs_config *c;
  cs_buf errors;
  ck_assert_int_eq(load(args, no_env, &c, &errors, NULL), CS_EINVAL);
  size_t lines = 0;
  for (const char *p = errors.data; p && *p; p = strchr(p, '\n') + 1) {
    ck_assert_msg(strncmp(p, "config: ", 8) == 0, "line: %s", p);
    ck_assert_ptr_nonnull(strchr(p, '\n'));
    lines++;
  }
  ck_assert_uint_eq(lines, 2);
  char *want =
      cs_asprintf("config: unknown setting \"li\\nsten\" (file %s)", file);
  ASSERT_HAS(errors.data, want);
  free(want);
  ASSERT_HAS(errors.data, "config: zones.regions.a\\x0ab (file ");
  cs_buf_free(&errors);
  free(file);
}
END_TEST

START_TEST(test_config_load_file_unknown_key)
{
  char *file = write_file("c.json", "{\"http\": {\"maxBodyByte\": 5, "
                                    "\"threads\": 1}, \"lisen\": \"x\", "
                                    "\"frobnicate\": 1, \"listen\": "
                                    "\"0.0.0.0:1\", \"listen\": "
                                    "\"0.0.0.0:2\"}");
  const char *args[] = {"--config", file, NULL};
  cs_config *c;
  cs_buf errors;
  ck_assert_int_eq(load(args, no_env, &c, &errors, NULL), CS_EINVAL);
  char *want = cs_asprintf("config: unknown setting \"http.maxBodyByte\" "
                           "(file %s) (did you mean http.maxBodyBytes?)\n",
                           file);
  ASSERT_HAS(errors.data, want);
  free(want);
  want = cs_asprintf("config: unknown setting \"lisen\" (file %s) (did you "
                     "mean listen?)\n",
                     file);
  ASSERT_HAS(errors.data, want);
  free(want);
  want =
      cs_asprintf("config: unknown setting \"frobnicate\" (file %s)\n", file);
  ASSERT_HAS(errors.data, want);
  free(want);
  want = cs_asprintf("config: listen = \"0.0.0.0:2\" (file %s): the setting "
                     "appears more than once in the file\n",
                     file);
  ASSERT_HAS(errors.data, want);
  free(want);
  cs_buf_free(&errors);
  free(file);
}
END_TEST

START_TEST(test_config_load_file_bad_json)
{
  char *file = write_file("c.json", "{\n  \"listen\": \"0.0.0.0:1\",\n"
                                    "  \"http\": {\"threads\": 2,,}\n}\n");
  const char *args[] = {"--config", file, NULL};
  cs_config *c;
  cs_buf errors;
  ck_assert_int_eq(load(args, no_env, &c, &errors, NULL), CS_EINVAL);
  char *want = cs_asprintf("config: %s is not valid JSON: error at line 3, "
                           "column 26",
                           file);
  ASSERT_HAS(errors.data, want);
  free(want);
  cs_buf_free(&errors);

  /* Trailing garbage after the document, a non-object, a missing file. */
  char *trail = write_file("t.json", "{}\n}");
  const char *args2[] = {"--config", trail, NULL};
  ck_assert_int_eq(load(args2, no_env, &c, &errors, NULL), CS_EINVAL);
  want = cs_asprintf("config: %s is not valid JSON: error at line 2, column "
                     "1 (byte offset 3)\n",
                     trail);
  ASSERT_HAS(errors.data, want);
  free(want);
  cs_buf_free(&errors);
  char *arr = write_file("a.json", "[1]");
  const char *args3[] = {"--config", arr, NULL};
  ck_assert_int_eq(load(args3, no_env, &c, &errors, NULL), CS_EINVAL);
  ASSERT_HAS(errors.data, "expected a JSON object of settings");
  cs_buf_free(&errors);
  const char *args4[] = {"--config", "/nonexistent/cs.json", NULL};
  ck_assert_int_eq(load(args4, no_env, &c, &errors, NULL), CS_EINVAL);
  ck_assert_str_eq(errors.data,
                   "config: cannot read the configuration file "
                   "/nonexistent/cs.json (--config): No such file or "
                   "directory\n");
  cs_buf_free(&errors);
  free(arr);
  free(trail);
  free(file);
}
END_TEST

START_TEST(test_config_print_redacts_secrets)
{
  char *tokfile = write_file("wt-pass", "hunter2-watttime\n");
  char *pass = cs_asprintf("CARBONSHIFT_WATTTIME_PASSWORD_FILE=%s", tokfile);
  char *const env[] = {"CARBONSHIFT_ELECTRICITYMAPS_TOKEN=s3cr3t-em-token",
                       "CARBONSHIFT_WATTTIME_USERNAME=alice", pass,
                       "CARBONSHIFT_HTTP_THREADS=2", NULL};
  cs_config *c;
  cs_buf errors;
  ck_assert_int_eq(load(NULL, env, &c, &errors, NULL), CS_OK);
  ck_assert_str_eq(c->electricitymaps_token, "s3cr3t-em-token");
  ck_assert_str_eq(c->watttime_password, "hunter2-watttime");
  char *src = cs_asprintf("file %s (watttime.passwordFile)", tokfile);
  ck_assert_str_eq(cs_config_source(c, "watttime.password"), src);
  free(src);
  cs_buf out;
  cs_buf_init(&out, 1 << 20);
  cs_config_print(c, &out);
  ck_assert_int_eq(cs_buf_error(&out), CS_OK);
  ck_assert_ptr_null(strstr(out.data, "s3cr3t"));
  ck_assert_ptr_null(strstr(out.data, "hunter2"));
  cJSON *j = cJSON_ParseWithLength(out.data, out.len);
  ck_assert_ptr_nonnull(j);
  cJSON *tok = cJSON_GetObjectItem(j, "electricitymaps.token");
  ck_assert_str_eq(cJSON_GetObjectItem(tok, "value")->valuestring,
                   "<redacted>");
  ck_assert_str_eq(cJSON_GetObjectItem(tok, "source")->valuestring,
                   "env CARBONSHIFT_ELECTRICITYMAPS_TOKEN");
  cJSON *pw = cJSON_GetObjectItem(j, "watttime.password");
  ck_assert_str_eq(cJSON_GetObjectItem(pw, "value")->valuestring, "<redacted>");
  cJSON *th = cJSON_GetObjectItem(j, "http.threads");
  ck_assert_int_eq(cJSON_GetObjectItem(th, "value")->valueint, 2);
  ck_assert(cJSON_IsNull(cJSON_GetObjectItem(
                cJSON_GetObjectItem(j, "nodes.defaultZone"), "value")) == 0);
  cJSON *d = cJSON_GetObjectItem(j, "nodes.defaultLifetime");
  ck_assert_str_eq(cJSON_GetObjectItem(d, "value")->valuestring, "6y");
  ck_assert_double_eq(cJSON_GetObjectItem(d, "seconds")->valuedouble,
                      6 * 365 * 86400.0);
  cJSON_Delete(j);
  cs_buf_free(&out);
  cs_config_free(c);
  cs_buf_free(&errors);

  /* A secret in the file or a flag is refused, and its value not echoed. */
  char *file = write_file(
      "c.json", "{\"electricitymaps\": {\"token\": \"file-secret-1\"}}");
  const char *args[] = {"--config", file, "--set",
                        "watttime.password=flag-secret-2", NULL};
  char *const env2[] = {pass, NULL};
  ck_assert_int_eq(load(args, env2, &c, &errors, NULL), CS_EINVAL);
  ck_assert_ptr_null(strstr(errors.data, "secret-1"));
  ck_assert_ptr_null(strstr(errors.data, "secret-2"));
  char *want = cs_asprintf(
      "config: electricitymaps.token = <redacted> (file %s): secrets are "
      "read only from the environment (CARBONSHIFT_ELECTRICITYMAPS_TOKEN) "
      "or a mounted file (electricitymaps.tokenFile), never from flags or "
      "the configuration file\n",
      file);
  ASSERT_HAS(errors.data, want);
  free(want);
  ASSERT_HAS(errors.data, "config: watttime.password = <redacted> (flag "
                          "--set watttime.password): secrets are read only");
  cs_buf_free(&errors);

  /* Both the secret and its file: refused; an unreadable secret file too. */
  char *both = cs_asprintf("CARBONSHIFT_WATTTIME_PASSWORD=x");
  char *const env3[] = {
      pass, both, "CARBONSHIFT_ELECTRICITYMAPS_TOKEN_FILE=/nonexistent", NULL};
  ck_assert_int_eq(load(NULL, env3, &c, &errors, NULL), CS_EINVAL);
  want = cs_asprintf("config: watttime.passwordFile = \"%s\" (env "
                     "CARBONSHIFT_WATTTIME_PASSWORD_FILE): watttime.password "
                     "is also set (env CARBONSHIFT_WATTTIME_PASSWORD); set "
                     "only one of them\n",
                     tokfile);
  ASSERT_HAS(errors.data, want);
  free(want);
  ASSERT_HAS(errors.data,
             "config: electricitymaps.tokenFile = \"/nonexistent\" (env "
             "CARBONSHIFT_ELECTRICITYMAPS_TOKEN_FILE): expected the path of "
             "a readable file holding electricitymaps.token: No such file "
             "or directory\n");
  cs_buf_free(&errors);
  free(both);
  free(file);
  free(pass);
  free(tokfile);
}
END_TEST

/* http.probeListen: empty (off) by default, an address as for listen, and
 * not on listen's own port, which could never bind twice. */
START_TEST(test_config_probe_listen_checked)
{
  cs_config *c;
  cs_buf errors;
  const char *ok[] = {"--probe-listen", ":8081", NULL};
  ck_assert_int_eq(load(ok, no_env, &c, &errors, NULL), CS_OK);
  ck_assert_str_eq(c->http_probe_listen, ":8081");
  ck_assert_str_eq(cs_config_source(c, "http.probeListen"),
                   "flag --probe-listen");
  cs_config_free(c);
  cs_buf_free(&errors);

  const char *same[] = {"--listen", "0.0.0.0:8443", "--set",
                        "http.probeListen=[::]:8443", NULL};
  ck_assert_int_eq(load(same, no_env, &c, &errors, NULL), CS_EINVAL);
  ck_assert_str_eq(errors.data,
                   "config: http.probeListen = \"[::]:8443\" (flag --set "
                   "http.probeListen): expected a port other than listen's "
                   "(0.0.0.0:8443): the probe listener is a second socket\n");
  cs_config_free(c);
  cs_buf_free(&errors);

  /* Port 0 on both picks two free ports. */
  const char *zero[] = {"--listen", "127.0.0.1:0", "--probe-listen",
                        "127.0.0.1:0", NULL};
  ck_assert_int_eq(load(zero, no_env, &c, &errors, NULL), CS_OK);
  cs_config_free(c);
  cs_buf_free(&errors);

  const char *bad[] = {"--probe-listen", "8081", NULL};
  ck_assert_int_eq(load(bad, no_env, &c, &errors, NULL), CS_EINVAL);
  ck_assert_str_eq(errors.data,
                   "config: http.probeListen = \"8081\" (flag "
                   "--probe-listen): expected empty, or an address as for "
                   "listen, such as :8081\n");
  cs_config_free(c);
  cs_buf_free(&errors);

  ck_assert_int_eq(load(NULL, no_env, &c, &errors, NULL), CS_OK);
  ck_assert_str_eq(c->http_probe_listen, "");
  cs_config_free(c);
  cs_buf_free(&errors);
}
END_TEST

/* A value must outlive the next fetch, which comes up to 10 % late: a
 * refresh interval at or above carbon.maxAge over 1.1 is refused. */
START_TEST(test_config_refresh_interval_below_max_age)
{
  cs_config *c;
  cs_buf errors;
  const char *bad[] = {"--set", "carbon.refreshInterval=55m", NULL};
  ck_assert_int_eq(load(bad, no_env, &c, &errors, NULL), CS_EINVAL);
  ck_assert_str_eq(errors.data,
                   "config: carbon.refreshInterval = \"55m\" (flag --set "
                   "carbon.refreshInterval): expected less than 54m32s, "
                   "carbon.maxAge (1h) over 1.1: a fetch comes up to 10% "
                   "late, and values would expire before it renews them, the "
                   "zones falling to the next provider in between\n");
  cs_buf_free(&errors);
  const char *ok[] = {"--set", "carbon.refreshInterval=55m", "--set",
                      "carbon.maxAge=2h", NULL};
  ck_assert_int_eq(load(ok, no_env, &c, &errors, NULL), CS_OK);
  cs_config_free(c);
  cs_buf_free(&errors);
}
END_TEST

START_TEST(test_config_load_tls_pairs)
{
  char *cert = write_file("tls.crt", "cert");
  char *key = write_file("tls.key", "key");
  const char *args[] = {"--tls-cert", cert, NULL};
  cs_config *c;
  cs_buf errors;
  ck_assert_int_eq(load(args, no_env, &c, &errors, NULL), CS_EINVAL);
  char *want = cs_asprintf("config: tls.certFile = \"%s\" (flag --tls-cert): "
                           "expected tls.keyFile (--tls-key) as well: a "
                           "certificate needs its private key\n",
                           cert);
  ck_assert_str_eq(errors.data, want);
  free(want);
  cs_buf_free(&errors);

  const char *args2[] = {"--tls-client-ca", cert, NULL};
  ck_assert_int_eq(load(args2, no_env, &c, &errors, NULL), CS_EINVAL);
  ASSERT_HAS(errors.data, "(flag --tls-client-ca): expected tls.certFile and "
                          "tls.keyFile as well");
  cs_buf_free(&errors);

  const char *args3[] = {
      "--tls-cert",      cert,   "--tls-key", "/nonexistent.key",
      "--tls-client-ca", tmpdir, NULL};
  ck_assert_int_eq(load(args3, no_env, &c, &errors, NULL), CS_EINVAL);
  ASSERT_HAS(errors.data, "config: tls.keyFile = \"/nonexistent.key\" (flag "
                          "--tls-key): expected a readable file: No such "
                          "file or directory\n");
  ASSERT_HAS(errors.data, "(flag --tls-client-ca): expected a readable file: "
                          "is a directory, not a regular file\n");
  cs_buf_free(&errors);

  const char *args4[] = {"--tls-cert",      cert, "--tls-key", key,
                         "--tls-client-ca", cert, NULL};
  ck_assert_int_eq(load(args4, no_env, &c, &errors, NULL), CS_OK);
  ck_assert_str_eq(c->tls_key_file, key);
  ck_assert_str_eq(cs_config_source(c, "tls.clientCAFile"),
                   "flag --tls-client-ca");
  cs_config_free(c);
  cs_buf_free(&errors);
  free(cert);
  free(key);
}
END_TEST

/* kube.mode=kubeconfig reads only kube.kubeconfig: without it the service
 * would have nothing to connect to, so start-up stops here. */
START_TEST(test_config_load_kube_kubeconfig_mode_needs_path)
{
  const char *args[] = {"--set", "kube.mode=kubeconfig", NULL};
  cs_config *c;
  cs_buf errors;
  ck_assert_int_eq(load(args, no_env, &c, &errors, NULL), CS_EINVAL);
  ck_assert_str_eq(errors.data,
                   "config: kube.mode = \"kubeconfig\" (flag --set "
                   "kube.mode): expected kube.kubeconfig (--kubeconfig) as "
                   "well: $KUBECONFIG and ~/.kube/config are not read\n");
  cs_buf_free(&errors);

  char *kc = write_file("kubeconfig", "kind: Config\n");
  const char *args2[] = {"--set", "kube.mode=kubeconfig", "--kubeconfig", kc,
                         NULL};
  ck_assert_int_eq(load(args2, no_env, &c, &errors, NULL), CS_OK);
  cs_config_free(c);
  cs_buf_free(&errors);
  /* auto without a path is fine: in-cluster, or no API server. */
  const char *args3[] = {"--set", "kube.mode=auto", NULL};
  ck_assert_int_eq(load(args3, no_env, &c, &errors, NULL), CS_OK);
  cs_config_free(c);
  cs_buf_free(&errors);
  free(kc);
}
END_TEST

/* A key given twice inside an object-valued setting is refused, naming
 * it, wherever the value comes from: the loaders would keep the last. */
START_TEST(test_config_load_json_settings_repeated_keys)
{
  const char *args[] = {
      "--set",
      "zones.regions={\"eu-central-1\":\"DE\",\"eu-central-1\":\"FR\"}",
      "--set",
      "carbon.routes={\"DE\":[\"static\"],\"FR\":[\"builtin\"],\"DE\":"
      "[\"builtin\"]}",
      "--set",
      "gpus=[{\"name\":\"A100-SXM4-80GB\",\"powerWatts\":300,"
      "\"powerWatts\":400}]",
      "--set",
      "file.traces={\"DE\":\"a.csv\",\"DE\":\"b.csv\"}",
      NULL};
  char *const env[] = {"CARBONSHIFT_ZONES_PUE={\"DE\": 1.1, \"DE\": 1.2}",
                       NULL};
  char *file =
      write_file("dup.json", "{\"carbon\": {\"static\": {\"NO\": 30, \"DE\": "
                             "380, \"NO\": 40}}}");
  const char *fargs[] = {"--config", file, NULL};
  cs_config *c;
  cs_buf errors;
  ck_assert_int_eq(load(args, env, &c, &errors, NULL), CS_EINVAL);
  const char *e = errors.data;
  ASSERT_HAS(e, "config: zones.regions.eu-central-1 (flag --set "
                "zones.regions): the key \"eu-central-1\" is given more than "
                "once; give it once\n");
  ASSERT_HAS(e, "config: carbon.routes.DE (flag --set carbon.routes): the key "
                "\"DE\" is given more than once; give it once\n");
  ASSERT_HAS(e, "config: gpus[0].powerWatts (flag --set gpus): the key "
                "\"powerWatts\" is given more than once; give it once\n");
  ASSERT_HAS(e, "config: file.traces.DE (flag --set file.traces): the key "
                "\"DE\" is given more than once; give it once\n");
  ASSERT_HAS(e, "config: zones.pue.DE (env CARBONSHIFT_ZONES_PUE): the key "
                "\"DE\" is given more than once; give it once\n");
  cs_buf_free(&errors);
  ck_assert_int_eq(load(fargs, no_env, &c, &errors, NULL), CS_EINVAL);
  char *want = cs_asprintf("config: carbon.static.NO (file %s): the key "
                           "\"NO\" is given more than once; give it once\n",
                           file);
  ck_assert_str_eq(errors.data, want);
  free(want);
  cs_buf_free(&errors);
  free(file);
}
END_TEST

/* Half a WattTime login would leave the provider out without a word. */
START_TEST(test_config_load_watttime_login_needs_both)
{
  char *const user[] = {"CARBONSHIFT_WATTTIME_USERNAME=alice", NULL};
  cs_config *c;
  cs_buf errors;
  ck_assert_int_eq(load(NULL, user, &c, &errors, NULL), CS_EINVAL);
  ck_assert_str_eq(errors.data,
                   "config: watttime.username = \"alice\" (env "
                   "CARBONSHIFT_WATTTIME_USERNAME): expected watttime.password "
                   "(CARBONSHIFT_WATTTIME_PASSWORD) or watttime.passwordFile "
                   "as well: a WattTime login needs both\n");
  cs_buf_free(&errors);

  char *const pass[] = {"CARBONSHIFT_WATTTIME_PASSWORD=pw-secret-3", NULL};
  ck_assert_int_eq(load(NULL, pass, &c, &errors, NULL), CS_EINVAL);
  ck_assert_str_eq(errors.data,
                   "config: watttime.password = <redacted> (env "
                   "CARBONSHIFT_WATTTIME_PASSWORD): expected watttime.username "
                   "(CARBONSHIFT_WATTTIME_USERNAME) as well: a WattTime login "
                   "needs both\n");
  cs_buf_free(&errors);

  /* A password file stands for the password, read or not. */
  char *pwfile = write_file("wt-pass-only", "pw-secret-4\n");
  char *file_env = cs_asprintf("CARBONSHIFT_WATTTIME_PASSWORD_FILE=%s", pwfile);
  char *const by_file[] = {file_env, NULL};
  ck_assert_int_eq(load(NULL, by_file, &c, &errors, NULL), CS_EINVAL);
  char *want = cs_asprintf("config: watttime.passwordFile = \"%s\" (env "
                           "CARBONSHIFT_WATTTIME_PASSWORD_FILE): expected "
                           "watttime.username (CARBONSHIFT_WATTTIME_USERNAME) "
                           "as well: a WattTime login needs both\n",
                           pwfile);
  ck_assert_str_eq(errors.data, want);
  ck_assert_ptr_null(strstr(errors.data, "pw-secret"));
  free(want);
  cs_buf_free(&errors);

  char *const both[] = {"CARBONSHIFT_WATTTIME_USERNAME=alice", file_env, NULL};
  ck_assert_int_eq(load(NULL, both, &c, &errors, NULL), CS_OK);
  ck_assert_str_eq(c->watttime_password, "pw-secret-4");
  cs_config_free(c);
  cs_buf_free(&errors);
  char *const unreadable[] = {"CARBONSHIFT_WATTTIME_USERNAME=alice",
                              "CARBONSHIFT_WATTTIME_PASSWORD_FILE=/nonexistent",
                              NULL};
  ck_assert_int_eq(load(NULL, unreadable, &c, &errors, NULL), CS_EINVAL);
  ck_assert_ptr_null(strstr(errors.data, "login needs both"));
  ASSERT_HAS(errors.data,
             "expected the path of a readable file holding watttime.password");
  cs_buf_free(&errors);
  /* The password pasted into the ..._FILE variable by mistake: the error
   * says what is wrong without repeating it. */
  char *const pasted[] = {"CARBONSHIFT_WATTTIME_USERNAME=alice",
                          "CARBONSHIFT_WATTTIME_PASSWORD_FILE=pw-secret-5",
                          NULL};
  ck_assert_int_eq(load(NULL, pasted, &c, &errors, NULL), CS_EINVAL);
  ck_assert_str_eq(errors.data,
                   "config: watttime.passwordFile (env "
                   "CARBONSHIFT_WATTTIME_PASSWORD_FILE): expected the path of "
                   "a readable file holding watttime.password: No such file "
                   "or directory (the value is not shown: without a '/' it "
                   "may be the secret itself rather than a path)\n");
  cs_buf_free(&errors);
  free(file_env);
  free(pwfile);
}
END_TEST

START_TEST(test_config_flags_take_set)
{
  const char *args[] = {"--set", "http.threads=4", "--set",
                        "carbon.routes={\"GB\":[\"ukgrid\",\"builtin\"]}",
                        NULL};
  cs_config *c;
  cs_buf errors;
  ck_assert_int_eq(load(args, no_env, &c, &errors, NULL), CS_OK);
  ck_assert_int_eq(c->http_threads, 4);
  ck_assert_str_eq(cs_config_source(c, "http.threads"),
                   "flag --set http.threads");
  ck_assert_uint_eq(c->ncarbon_routes, 1);
  ck_assert_str_eq(c->carbon_routes[0].zone, "GB");
  ck_assert_uint_eq(c->carbon_routes[0].nproviders, 2);
  ck_assert_str_eq(c->carbon_routes[0].providers[1], "builtin");
  cs_config_free(c);
  cs_buf_free(&errors);

  const char *bad[] = {"--set", "http.thread=4", "--set", "http.threads=-1",
                       NULL};
  ck_assert_int_eq(load(bad, no_env, &c, &errors, NULL), CS_EINVAL);
  ck_assert_str_eq(errors.data,
                   "config: unknown setting \"http.thread\" (flag --set "
                   "http.thread) (did you mean http.threads?)\n"
                   "config: http.threads = \"-1\" (flag --set http.threads): "
                   "expected a whole number between 0 and 1024\n");
  cs_buf_free(&errors);

  /* Usage errors are immediate; other arguments are not taken. */
  cs_config_flags *f = cs_config_flags_new();
  char *argv[] = {"--set", "novalue", "--print-config", "-listen", "--set"};
  int i = 0;
  bool taken;
  char err[128];
  ck_assert_int_eq(
      cs_config_flags_take(f, 5, argv, &i, &taken, err, sizeof(err)),
      CS_EINVAL);
  ck_assert_str_eq(err, "--set needs NAME=VALUE such as --set "
                        "http.threads=4, not \"novalue\"");
  i = 2;
  ck_assert_int_eq(
      cs_config_flags_take(f, 5, argv, &i, &taken, err, sizeof(err)), CS_OK);
  ck_assert(!taken);
  ck_assert_int_eq(i, 2);
  i = 3;
  ck_assert_int_eq(
      cs_config_flags_take(f, 5, argv, &i, &taken, err, sizeof(err)), CS_OK);
  ck_assert(!taken);
  i = 4;
  ck_assert_int_eq(
      cs_config_flags_take(f, 5, argv, &i, &taken, err, sizeof(err)),
      CS_EINVAL);
  ck_assert_str_eq(err, "--set needs a value such as --set http.threads=4");
  cs_config_flags_free(f);
  cs_config_flags_free(NULL);
}
END_TEST

START_TEST(test_config_load_json_settings)
{
  char *file = write_file(
      "c.json",
      "{\"gpus\": [{\"name\": \"H100-SXM5-80GB\", \"powerWatts\": 650},\n"
      "  {\"name\": \"MI300X\", \"vendor\": \"AMD\", \"labels\": "
      "[\"AMD-Instinct-MI300X\"], \"powerWatts\": 750, \"tensorTflops\": "
      "1307, \"memoryGb\": 192, \"embodiedKg\": 200},\n"
      "  {\"name\": \"X1\", \"powerWatts\": -5, \"tensorTflop\": 3, "
      "\"labels\": [\"ok\", 7], \"devicesPerCard\": 1.5},\n"
      "  {\"vendor\": \"NVIDIA\"}, 5, {\"name\": \"mi300x\"}],\n"
      " \"zones\": {\"regions\": {\"eu-west-1\": \"IE\", \"x\": 3}, "
      "\"pue\": {\"DE\": 1.1, \"FR\": 4}},\n"
      " \"carbon\": {\"static\": {\"DE\": 380, \"NO\": -1}, \"routes\": "
      "{\"*\": [\"electricitymap\"], \"GB\": [\"ukgrid\", \"ukgrid\"], "
      "\"FR\": []}}}");
  const char *args[] = {"--config", file, NULL};
  cs_config *c;
  cs_buf errors;
  ck_assert_int_eq(load(args, no_env, &c, &errors, NULL), CS_EINVAL);
  const char *e = errors.data;
  char *src = cs_asprintf("(file %s)", file);
  const char *wants[] = {
      "config: gpus[2].powerWatts = -5 %s: expected a number of watts "
      "between 1 and 5000\n",
      "config: gpus[2].tensorTflop %s: unknown field; expected one of name, "
      "vendor, labels, powerWatts, tensorTflops, memoryGb, "
      "relativeThroughput, embodiedKg, devicesPerCard (did you mean "
      "tensorTflops?)\n",
      "config: gpus[2].devicesPerCard = 1.5 %s: expected a whole number of "
      "schedulable devices one card shows between 1 and 8\n",
      "config: gpus[2].labels[1] = 7 %s: expected a node-label value",
      "config: gpus[3] %s: expected a \"name\" member naming the model\n",
      "config: gpus[4] = 5 %s: expected an object",
      "config: gpus[5] %s: model \"mi300x\" is already listed at gpus[1]\n",
      "config: zones.regions.x = 3 %s: expected a grid zone id",
      "config: zones.pue.FR = 4 %s: expected a PUE between 1 and 3\n",
      "config: carbon.static.NO = -1 %s: expected an intensity in "
      "gCO2e/kWh between 0 and 3000\n",
      "config: carbon.routes.*[0] = \"electricitymap\" %s: expected a "
      "provider name (builtin, static, file, electricitymaps, watttime or "
      "ukgrid); did you mean electricitymaps?\n",
      "config: carbon.routes.GB[1] = \"ukgrid\" %s: expected each provider "
      "at most once per zone\n",
      "config: carbon.routes.FR = [] %s: expected a non-empty array",
  };
  for (size_t i = 0; i < sizeof(wants) / sizeof(wants[0]); i++) {
    char *w = cs_asprintf(wants[i], src);
    ASSERT_HAS(e, w);
    free(w);
  }
  free(src);
  cs_buf_free(&errors);

  /* The valid parts, read back. */
  char *good = write_file(
      "g.json",
      "{\"gpus\": [{\"name\": \"MI300X\", \"vendor\": \"AMD\", \"labels\": "
      "[\"AMD-Instinct-MI300X\", \"mi300x\"], \"powerWatts\": 750, "
      "\"relativeThroughput\": 1.9, \"devicesPerCard\": 2}],"
      " \"zones\": {\"regions\": {\"eu-west-1\": \"IE\"}, \"pue\": "
      "{\"DE\": 1.1}}, \"carbon\": {\"static\": {\"DE\": 380}}}");
  const char *args2[] = {"--config", good, NULL};
  char *const env[] = {"CARBONSHIFT_ZONES_PUE={\"FR\": 1.3, \"SE\": 1.05}",
                       NULL};
  ck_assert_int_eq(load(args2, env, &c, &errors, NULL), CS_OK);
  ck_assert_uint_eq(c->ngpus, 1);
  ck_assert_str_eq(c->gpus[0].name, "MI300X");
  ck_assert_str_eq(c->gpus[0].vendor, "AMD");
  ck_assert_uint_eq(c->gpus[0].nlabels, 2);
  ck_assert_str_eq(c->gpus[0].labels[1], "mi300x");
  ck_assert_double_eq(c->gpus[0].power_w, 750);
  ck_assert_double_eq(c->gpus[0].tensor_tflops, 0);
  ck_assert_double_eq_tol(c->gpus[0].relative_throughput, 1.9, 1e-12);
  ck_assert_double_eq(c->gpus[0].devices_per_card, 2);
  ck_assert_uint_eq(c->nzones_regions, 1);
  ck_assert_str_eq(c->zones_regions[0].value, "IE");
  /* The environment replaces the file's whole object. */
  ck_assert_uint_eq(c->nzones_pue, 2);
  ck_assert_str_eq(c->zones_pue[1].key, "SE");
  ck_assert_str_eq(cs_config_source(c, "zones.pue"),
                   "env CARBONSHIFT_ZONES_PUE");
  ck_assert_uint_eq(c->ncarbon_static, 1);
  ck_assert_double_eq(c->carbon_static[0].value, 380);
  cs_config_free(c);
  cs_buf_free(&errors);
  free(good);
  free(file);
}
END_TEST

START_TEST(test_config_load_env_unknown_warns)
{
  char *const env[] = {"CARBONSHIFT_HTTP_THREAD=2",
                       "CARBONSHIFT_SERVICE_HOST=10.0.0.1",
                       "CARBONSHIFT_PORT=tcp://10.0.0.1:443",
                       "CARBONSHIFT_PORT_443_TCP_ADDR=10.0.0.1",
                       "CARBONSHIFTX=1",
                       "HOME=/root",
                       NULL};
  cs_config *c;
  cs_buf errors, warnings;
  cs_buf_init(&warnings, 1 << 16);
  ck_assert_int_eq(load(NULL, env, &c, &errors, &warnings), CS_OK);
  ck_assert_str_eq(warnings.data, "config: unknown environment variable "
                                  "CARBONSHIFT_HTTP_THREAD (did you mean "
                                  "CARBONSHIFT_HTTP_THREADS?); ignored\n");
  cs_config_free(c);
  cs_buf_free(&errors);
  cs_buf_free(&warnings);
}
END_TEST

START_TEST(test_config_error_external_check)
{
  char *const env[] = {"CARBONSHIFT_ESTIMATE_REFERENCE_GPU=Z100", NULL};
  cs_config *c;
  cs_buf errors;
  ck_assert_int_eq(load(NULL, env, &c, &errors, NULL), CS_OK);
  cs_config_error(&errors, c, "estimate.referenceGpu",
                  c->estimate_reference_gpu,
                  "expected a GPU model in the catalog%s", "");
  ck_assert_str_eq(errors.data,
                   "config: estimate.referenceGpu = \"Z100\" (env "
                   "CARBONSHIFT_ESTIMATE_REFERENCE_GPU): expected a GPU "
                   "model in the catalog\n");
  cs_config_free(c);
  cs_buf_free(&errors);
}
END_TEST

/* The table in docs/configuration.md is the generated one, byte for byte,
 * between its BEGIN/END markers. */
/* The text of docs/<name> (static storage, overwritten by the next call). */
static const char *read_doc(const char *name)
{
  const char *root = getenv("CS_SRCDIR") ? getenv("CS_SRCDIR") : ".";
  char *path = cs_asprintf("%s/docs/%s", root, name);
  FILE *f = fopen(path, "r");
  ck_assert_msg(f != NULL,
                "cannot open %s (%s): run the tests from the repository root "
                "or set CS_SRCDIR",
                path, strerror(errno));
  static char doc[1 << 18];
  size_t n = fread(doc, 1, sizeof(doc) - 1, f);
  doc[n] = '\0';
  fclose(f);
  free(path);
  return doc;
}

/* True when `word` occurs in text as the start of a code span: a backtick,
 * the word, then a backtick, a space or '='. */
static bool in_code(const char *text, const char *word)
{
  size_t n = strlen(word);
  for (const char *p = text; (p = strstr(p, word)) != NULL; p++)
    if (p > text && p[-1] == '`' && (p[n] == '`' || p[n] == ' ' || p[n] == '='))
      return true;
  return false;
}

/* docs/kubernetes.md names only settings that exist. */
START_TEST(test_config_docs_kubernetes_names_real_settings)
{
  const char *doc = read_doc("kubernetes.md");
  cs_config *c = cs_config_defaults();
  size_t seen = 0;
  static const char *const prefixes[] = {"`kube.", "`events."};
  for (size_t i = 0; i < 2; i++)
    for (const char *p = doc; (p = strstr(p, prefixes[i])) != NULL; p++) {
      char name[64];
      size_t n = strspn(p + 1, "abcdefghijklmnopqrstuvwxyz"
                               "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.");
      snprintf(name, sizeof(name), "%.*s", (int)n, p + 1);
      if (strncmp(name, "events.k8s.io", 13) == 0)
        continue; /* the API group, not a setting */
      ck_assert_msg(cs_config_source(c, name) != NULL,
                    "docs/kubernetes.md names `%s`, which is no setting", name);
      seen++;
    }
  ck_assert_uint_gt(seen, 10);
  cs_config_free(c);
}
END_TEST

/* The prose list of flags in docs/configuration.md (outside the generated
 * table) names every flag that `serve` takes. */
START_TEST(test_config_docs_list_every_flag)
{
  const char *doc = read_doc("configuration.md");
  const char *end = strstr(doc, "<!-- BEGIN config-reference -->");
  ck_assert_ptr_nonnull(end);
  char *prose = cs_strndup(doc, (size_t)(end - doc));
  cs_buf usage;
  cs_buf_init(&usage, 1 << 16);
  cs_config_flags_usage(&usage);
  cs_buf_putc(&usage, '\0');
  size_t seen = 0;
  for (const char *l = usage.data; *l; l = strchr(l, '\n') + 1) {
    const char *f = l + strspn(l, " ");
    if (strncmp(f, "--", 2) == 0) {
      char flag[64];
      snprintf(flag, sizeof(flag), "%.*s", (int)strcspn(f, " ,\n"), f);
      ck_assert_msg(in_code(prose, flag),
                    "docs/configuration.md does not list %s among the flags",
                    flag);
      seen++;
    }
    if (!strchr(l, '\n'))
      break;
  }
  ck_assert_uint_ge(seen, 6);
  cs_buf_free(&usage);
  free(prose);
}
END_TEST

START_TEST(test_config_reference_matches_docs)
{
  const char *path = "docs/configuration.md";
  const char *doc = read_doc("configuration.md");
  const char *begin_mark = "<!-- BEGIN config-reference -->\n";
  const char *end_mark = "<!-- END config-reference -->";
  const char *b = strstr(doc, begin_mark), *e = strstr(doc, end_mark);
  ck_assert_msg(b && e && e > b, "%s lacks the config-reference markers", path);
  b += strlen(begin_mark);
  cs_buf ref;
  cs_buf_init(&ref, 1 << 20);
  cs_config_reference(&ref);
  ck_assert_msg((size_t)(e - b) == ref.len && !memcmp(b, ref.data, ref.len),
                "%s is out of date: replace the table between the markers "
                "with the output of `carbonshift config-reference`",
                path);
  /* And every setting's environment variable appears in the table. */
  ASSERT_HAS(ref.data, "| `tls.clientCAFile` | "
                       "`CARBONSHIFT_TLS_CLIENT_CA_FILE` | `--tls-client-ca` "
                       "| file path |");
  ASSERT_HAS(ref.data, "| `http.maxBodyBytes` | "
                       "`CARBONSHIFT_HTTP_MAX_BODY_BYTES` |  | size (bytes) | "
                       "`128Mi` | 1Ki .. 1Gi |");
  ASSERT_HAS(ref.data, "| `log.verbosity` | `CARBONSHIFT_LOG_VERBOSITY` | "
                       "`--v`, `-v` |");
  cs_buf_free(&ref);
}
END_TEST

/* ---- the built binary ---- */

typedef struct run_result {
  int status; /* exit code, or -1 when killed */
  char out[1 << 16];
  char err[1 << 16];
} run_result;

static void drain(int fd, char *buf, size_t cap)
{
  size_t n = 0;
  for (;;) {
    ssize_t r = read(fd, buf + n, cap - 1 - n);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      break;
    n += (size_t)r;
    if (n + 1 >= cap)
      break;
  }
  buf[n] = '\0';
}

static const char *bin(void)
{
  const char *b = getenv("CS_BIN");
  ck_assert_msg(b && *b,
                "CS_BIN is not set: run these tests with `make unit` (it "
                "passes the path of the built carbonshift)");
  ck_assert_msg(access(b, X_OK) == 0,
                "CS_BIN=%s is not an executable (%s): build it first", b,
                strerror(errno));
  return b;
}

/* Runs CS_BIN with argv and envp; stdout and stderr go to files, read
 * after exit, so a full pipe can never hang the test. */
static void run(char *const *argv, char *const *envp, run_result *r)
{
  char *outp = cs_asprintf("%s/out", tmpdir);
  char *errp = cs_asprintf("%s/err", tmpdir);
  const char *b = bin();
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    int o = open(outp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int e = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (o < 0 || e < 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0)
      _exit(127);
    alarm(20);
    execve(b, argv, envp);
    _exit(127);
  }
  int st;
  ck_assert_int_eq(waitpid(pid, &st, 0), pid);
  r->status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  int o = open(outp, O_RDONLY), e = open(errp, O_RDONLY);
  ck_assert_int_ge(o, 0);
  ck_assert_int_ge(e, 0);
  drain(o, r->out, sizeof(r->out));
  drain(e, r->err, sizeof(r->err));
  close(o);
  close(e);
  free(outp);
  free(errp);
}

/* j[key][field], asserting both exist. */
static cJSON *member(cJSON *j, const char *key, const char *field)
{
  cJSON *s = cJSON_GetObjectItemCaseSensitive(j, key);
  ck_assert_msg(s != NULL, "no \"%s\" in the printed configuration", key);
  cJSON *v = cJSON_GetObjectItemCaseSensitive(s, field);
  ck_assert_msg(v != NULL, "no \"%s\".%s in the printed configuration", key,
                field);
  return v;
}

START_TEST(test_config_binary_print_config)
{
  static run_result r;
  char *argv[] = {"carbonshift", "serve",          "--print-config",
                  "--listen",    "127.0.0.1:9555", NULL};
  char *envp[] = {"CARBONSHIFT_HTTP_THREADS=3",
                  "CARBONSHIFT_ELECTRICITYMAPS_TOKEN=bin-secret-77",
                  "CARBONSHIFT_CARBON_SIGNAL_TYPE=marginal", NULL};
  run(argv, envp, &r);
  ck_assert_msg(r.status == 0, "exit %d, stderr:\n%s", r.status, r.err);
  ck_assert_ptr_null(strstr(r.out, "bin-secret-77"));
  ck_assert_ptr_null(strstr(r.err, "bin-secret-77"));
  cJSON *j = cJSON_ParseWithLength(r.out, strlen(r.out));
  ck_assert_msg(j != NULL, "stdout is not one JSON document:\n%s", r.out);
  ck_assert_int_eq(member(j, "http.threads", "value")->valueint, 3);
  ck_assert_str_eq(member(j, "http.threads", "source")->valuestring,
                   "env CARBONSHIFT_HTTP_THREADS");
  ck_assert_str_eq(member(j, "listen", "value")->valuestring, "127.0.0.1:9555");
  ck_assert_str_eq(member(j, "listen", "source")->valuestring, "flag --listen");
  ck_assert_str_eq(member(j, "carbon.signalType", "value")->valuestring,
                   "marginal");
  ck_assert_str_eq(member(j, "electricitymaps.token", "value")->valuestring,
                   "<redacted>");
  ck_assert_double_eq(member(j, "http.maxBodyBytes", "value")->valuedouble,
                      128 << 20);
  ck_assert_str_eq(member(j, "http.maxBodyBytes", "source")->valuestring,
                   "default");
  cJSON_Delete(j);
}
END_TEST

/* --print-config also makes the checks of starting that need no socket:
 * the listen address's form, the TLS pair, the kubeconfig, in-cluster
 * files; each problem is one "config:" line and the exit status 2. */
START_TEST(test_config_binary_print_config_checks_start)
{
  static run_result r;
  char *envp[] = {NULL};
  char *bad_listen[] = {"carbonshift", "serve", "--print-config",
                        "--listen",    "foo:1", NULL};
  run(bad_listen, envp, &r);
  ck_assert_int_eq(r.status, 2);
  ck_assert_str_eq(r.out, "");
  ASSERT_HAS(r.err, "config: listen address \"foo:1\": \"foo\" is not a "
                    "numeric IP address (or localhost)");

  tu_tls t;
  ck_assert(tu_tls_make(&t));
  char *bad_pair[] = {"carbonshift", "serve",       "--print-config",
                      "--tls-cert",  t.server_cert, "--tls-key",
                      t.client_key,  NULL};
  run(bad_pair, envp, &r);
  ck_assert_int_eq(r.status, 2);
  ASSERT_HAS(r.err, "are not a usable PEM pair (an unencrypted key matching "
                    "the first certificate)");
  char *good_pair[] = {"carbonshift", "serve",           "--print-config",
                       "--tls-cert",  t.server_cert,     "--tls-key",
                       t.server_key,  "--tls-client-ca", t.ca_cert,
                       NULL};
  run(good_pair, envp, &r);
  ck_assert_msg(r.status == 0, "exit %d:\n%s", r.status, r.err);
  char *bad_ca[] = {"carbonshift", "serve",           "--print-config",
                    "--tls-cert",  t.server_cert,     "--tls-key",
                    t.server_key,  "--tls-client-ca", t.server_key,
                    NULL};
  run(bad_ca, envp, &r);
  ck_assert_int_eq(r.status, 2);
  ASSERT_HAS(r.err, "holds no PEM certificate");
  tu_tls_cleanup(&t);

  char *not_kubeconfig = write_file("not-a-kubeconfig", "- just\n- a list\n");
  char *bad_kc[] = {"carbonshift",  "serve",        "--print-config",
                    "--kubeconfig", not_kubeconfig, NULL};
  run(bad_kc, envp, &r);
  ck_assert_int_eq(r.status, 2);
  char *want = cs_asprintf("config: kubeconfig %s: expected a mapping at the "
                           "top level\n",
                           not_kubeconfig);
  ASSERT_HAS(r.err, want);
  free(want);
  free(not_kubeconfig);

  /* envp holds no KUBERNETES_SERVICE_HOST: not in a Pod. */
  char *in_cluster[] = {"carbonshift",         "serve",
                        "--print-config",      "--set",
                        "kube.mode=inCluster", NULL};
  run(in_cluster, envp, &r);
  ck_assert_int_eq(r.status, 2);
  ASSERT_HAS(r.err, "config: in-cluster: KUBERNETES_SERVICE_HOST and "
                    "KUBERNETES_SERVICE_PORT must be set, expected to run in "
                    "a Pod");
}
END_TEST

/* WattTime's region names and coordinates are zone ids in settings too,
 * as on nodes (cs_zone_id_valid). */
START_TEST(test_config_binary_zone_ids_of_every_provider)
{
  static run_result r;
  char *argv[] = {"carbonshift",
                  "serve",
                  "--set",
                  "carbon.routes={\"CAISO_NORTH\":[\"builtin\"],"
                  "\"38.58,-121.49\":[\"builtin\"]}",
                  "--set",
                  "nodes.defaultZone=GB-REGION-13",
                  "--print-config",
                  NULL};
  char *envp[] = {NULL};
  run(argv, envp, &r);
  ck_assert_msg(r.status == 0, "exit %d, stderr:\n%s", r.status, r.err);
  ASSERT_HAS(r.out, "\"CAISO_NORTH\":[\"builtin\"]");
  ASSERT_HAS(r.out, "\"38.58,-121.49\":[\"builtin\"]");
  char *bad[] = {"carbonshift", "serve", "--set", "nodes.defaultZone=91,0",
                 NULL};
  run(bad, envp, &r);
  ck_assert_int_eq(r.status, 2);
  ASSERT_HAS(r.err, "config: nodes.defaultZone = \"91,0\" (flag --set "
                    "nodes.defaultZone): expected empty, or a grid zone id");
}
END_TEST

/* Every element of gpus is checked in one run: a bad field in one does not
 * hide what the catalog would refuse in the others, each message names
 * the fields missing, and the reference GPU naming an element already
 * reported is not reported again. */
START_TEST(test_config_binary_gpus_all_problems_in_one_run)
{
  static run_result r;
  char *argv[] = {"carbonshift",
                  "serve",
                  "--set",
                  "gpus=[{\"name\":\"MYGPU\"},{\"name\":\"C\","
                  "\"powerWatts\":-5},{\"name\":\"B\",\"powerWatts\":300},"
                  "{\"name\":\"D\",\"tensorTflops\":50,\"labels\":"
                  "[\"NVIDIA-H100-80GB-HBM3\"]},7,"
                  "{\"name\":\"NVIDIA-A100-SXM4-80GB\",\"powerWatts\":400},"
                  "{\"name\":\"h100_sxm5_80gb\",\"powerWatts\":650}]",
                  "--set",
                  "estimate.referenceGpu=C",
                  "--print-config",
                  NULL};
  char *envp[] = {NULL};
  run(argv, envp, &r);
  ck_assert_int_eq(r.status, 2);
  const char *src = "(flag --set gpus): ";
  const char *need = ": a model not in the built-in catalog needs its power "
                     "and its speed (docs/gpus.md)\n";
  char *want[] = {
      cs_asprintf("config: gpus[1].powerWatts = -5 %sexpected a number of "
                  "watts between 1 and 5000\n",
                  src),
      cs_asprintf("config: gpus[4] = 7 %sexpected an object", src),
      cs_asprintf("config: gpus[0] = \"MYGPU\" %sexpected powerWatts, and "
                  "tensorTflops or relativeThroughput%s",
                  src, need),
      cs_asprintf("config: gpus[2] = \"B\" %sexpected tensorTflops or "
                  "relativeThroughput as well%s",
                  src, need),
      cs_asprintf("config: gpus[3].labels[0] = \"NVIDIA-H100-80GB-HBM3\" "
                  "%sexpected a label that names no other model: it names "
                  "H100-SXM5-80GB\n",
                  src),
      cs_asprintf("config: gpus[3] = \"D\" %sexpected powerWatts as well%s",
                  src, need),
      cs_asprintf("config: gpus[5].name = \"NVIDIA-A100-SXM4-80GB\" "
                  "%sexpected a model name: this is a node label of "
                  "A100-SXM4-80GB (override that model under its own name)\n",
                  src),
  };
  for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
    ASSERT_HAS(r.err, want[i]);
    free(want[i]);
  }
  ck_assert_msg(!strstr(r.err, "estimate.referenceGpu"), "%s", r.err);
  ck_assert_msg(!strstr(r.err, "gpus[1] ="), "%s", r.err);
  /* The built-in name spelt with other separators and case is that model. */
  ck_assert_msg(!strstr(r.err, "gpus[6]"), "%s", r.err);
}
END_TEST

/* An object setting with one bad member keeps its good ones for the checks
 * made after loading: file.traces' bad DE does not hide FR's missing file,
 * which the file provider reports in the same run. */
START_TEST(test_config_binary_object_setting_all_problems_in_one_run)
{
  static run_result r;
  char *envp[] = {NULL};
  char *argv[] = {"carbonshift",
                  "serve",
                  "--set",
                  "file.traces={\"DE\": \"\", \"FR\": "
                  "\"/nonexistent/fr.csv\"}",
                  "--print-config",
                  NULL};
  run(argv, envp, &r);
  ck_assert_int_eq(r.status, 2);
  ASSERT_HAS(r.err, "config: file.traces.DE = \"\" (flag --set file.traces): "
                    "expected a non-empty string");
  ASSERT_HAS(r.err, "/nonexistent/fr.csv: No such file or directory");
}
END_TEST

/* A duration setting's documented range is one the parser takes: the
 * least dedup window is 1s (a duration is never 0). */
START_TEST(test_config_binary_dedup_window_range)
{
  static run_result r;
  char *envp[] = {NULL};
  char *zero[] = {"carbonshift", "serve", "--set", "events.dedupWindow=0s",
                  NULL};
  run(zero, envp, &r);
  ck_assert_int_eq(r.status, 2);
  ASSERT_HAS(r.err, "config: events.dedupWindow = \"0s\"");
  ASSERT_HAS(r.err, "between 1s and 1d");
  char *one[] = {"carbonshift",           "serve",          "--set",
                 "events.dedupWindow=1s", "--print-config", NULL};
  run(one, envp, &r);
  ck_assert_msg(r.status == 0, "exit %d: %s", r.status, r.err);
}
END_TEST

START_TEST(test_config_binary_bad_config_exits_2)
{
  static run_result r;
  char *file = write_file(
      "bad.json", "{\"http\": {\"maxBodyBytes\": \"12x\", \"threads\": -1},"
                  " \"estimate\": {\"referenceGpu\": \"NoSuchGPU-9000\"},"
                  " \"gpus\": [{\"name\": \"X\", \"powerWatts\": -5}],"
                  " \"lissen\": \"x\"}");
  char *argv[] = {"carbonshift", "serve", "--config", file, NULL};
  char *envp[] = {"CARBONSHIFT_NODES_DEFAULT_PUE=7", NULL};
  run(argv, envp, &r);
  ck_assert_msg(r.status == 2, "exit %d, stderr:\n%s", r.status, r.err);
  char *src = cs_asprintf("(file %s)", file);
  const char *wants[] = {
      "config: http.maxBodyBytes = \"12x\" %s: expected a size in bytes",
      "config: http.threads = -1 %s: expected a whole number",
      "config: gpus[0].powerWatts = -5 %s: expected a number of watts",
      "config: unknown setting \"lissen\" %s (did you mean listen?)",
      "config: estimate.referenceGpu = \"NoSuchGPU-9000\" %s: expected a GPU "
      "model in the catalog",
  };
  for (size_t i = 0; i < sizeof(wants) / sizeof(wants[0]); i++) {
    char *w = cs_asprintf(wants[i], src);
    ASSERT_HAS(r.err, w);
    free(w);
  }
  ASSERT_HAS(r.err, "config: nodes.defaultPue = \"7\" (env "
                    "CARBONSHIFT_NODES_DEFAULT_PUE): expected a number "
                    "between 1 and 3");
  ck_assert_str_eq(r.out, "");
  free(src);
  free(file);

  /* A measured throughput the reference GPU has no counterpart for could
   * never be compared: refused, naming both. */
  char *argv3[] = {"carbonshift", "serve", NULL};
  char *envp3[] = {"CARBONSHIFT_GPUS=[{\"name\":\"H100-SXM5-80GB\","
                   "\"relativeThroughput\":2.5}]",
                   NULL};
  run(argv3, envp3, &r);
  ck_assert_msg(r.status == 2, "exit %d, stderr:\n%s", r.status, r.err);
  ASSERT_HAS(r.err, "config: gpus[0].relativeThroughput = \"2.5\" (env "
                    "CARBONSHIFT_GPUS): expected a relativeThroughput in the "
                    "same unit for the reference GPU too "
                    "(estimate.referenceGpu=A100-SXM4-80GB has none)");

  /* A usage error is exit 2 with a one-line hint. */
  char *argv2[] = {"carbonshift", "serve", "--bogus", NULL};
  char *envp2[] = {NULL};
  run(argv2, envp2, &r);
  ck_assert_int_eq(r.status, 2);
  ASSERT_HAS(r.err, "--bogus");
  ASSERT_HAS(r.err, "carbonshift help serve");
}
END_TEST

/* The configuration a snippet of docs stands for, as a whole file (caller
 * frees), or NULL when the snippet is no configuration: one that opens
 * with "gpus" or "zones" is members of the file's top object, one that
 * opens with {"name" a single gpus entry. */
static char *doc_config(const char *snippet, size_t n)
{
  size_t skip = strspn(snippet, " \n");
  snippet += skip;
  n -= skip < n ? skip : n;
  if (!strncmp(snippet, "\"gpus\"", 6) || !strncmp(snippet, "\"zones\"", 7))
    return cs_asprintf("{%.*s}", (int)n, snippet);
  if (!strncmp(snippet, "{\"name\"", 7))
    return cs_asprintf("{\"gpus\": [%.*s]}", (int)n, snippet);
  return NULL;
}

/* Every configuration example in docs/gpus.md and docs/zones.md (code
 * spans and ```json blocks, see doc_config) is one `serve` accepts, the
 * catalog's checks included: a key the loader does not know (embodied_kg
 * for embodiedKg) or a label another model has fails here. */
/* A path setting that names a FIFO or a device is refused by the start's
 * checks, before anything opens it: a FIFO would block the start until a
 * writer came, /dev/zero would never end. */
START_TEST(test_config_binary_paths_not_regular_files_refused)
{
  static run_result r;
  char *fifo = cs_asprintf("%s/kc.fifo", tmpdir);
  ck_assert_int_eq(mkfifo(fifo, 0600), 0);
  const char *paths[] = {fifo, "/dev/zero"};
  const char *want[] = {"is a FIFO, not a regular file",
                        "is a character device, not a regular file"};
  for (int i = 0; i < 2; i++) {
    char *argv[] = {
        "carbonshift", "serve", "--kubeconfig", (char *)paths[i], "--listen",
        "127.0.0.1:0", NULL};
    char *envp[] = {NULL};
    run(argv, envp, &r);
    ck_assert_msg(r.status == 2, "exit %d, stderr:\n%s", r.status, r.err);
    char *w = cs_asprintf("config: kube.kubeconfig = \"%s\" (flag "
                          "--kubeconfig): expected a readable file: %s",
                          paths[i], want[i]);
    ASSERT_HAS(r.err, w);
    free(w);
  }
  unlink(fifo);
  free(fifo);
}
END_TEST

START_TEST(test_config_binary_docs_examples_load)
{
  static const char *const docs[] = {"gpus.md", "zones.md"};
  static run_result r;
  size_t seen = 0;
  for (size_t d = 0; d < sizeof(docs) / sizeof(docs[0]); d++) {
    char *doc = cs_strdup(read_doc(docs[d]));
    for (const char *p = doc; (p = strchr(p, '`')) != NULL;) {
      bool fence = !strncmp(p, "```", 3);
      const char *body = fence ? strchr(p, '\n') : p + 1;
      const char *end = body ? strstr(body, fence ? "```" : "`") : NULL;
      if (!end)
        break;
      char *text = doc_config(body, (size_t)(end - body));
      p = end + (fence ? 3 : 1);
      if (!text)
        continue;
      char *file = write_file("doc.json", text);
      char *argv[] = {"carbonshift", "serve",          "--config",
                      file,          "--print-config", NULL};
      char *envp[] = {NULL};
      run(argv, envp, &r);
      ck_assert_msg(r.status == 0, "docs/%s: %s\nexit %d:\n%s", docs[d], text,
                    r.status, r.err);
      seen++;
      free(file);
      free(text);
    }
    free(doc);
  }
  ck_assert_uint_ge(seen, 4);
}
END_TEST

/* What docs/operations.md shows for bad TLS files at start-up, from the
 * binary: a missing certificate is a configuration error (the doc's two
 * stderr lines, exit 2); a key that does not match it stops the start with
 * "Cannot start the server" (exit 1). */
START_TEST(test_config_binary_tls_errors_as_documented)
{
  static const char doc_path[] = "/etc/carbonshift/tls.crt";
  const char *doc = read_doc("operations.md");
  const char *at = strstr(doc, "\n  config: tls.certFile = ");
  ck_assert_msg(at != NULL, "docs/operations.md shows no tls.certFile error");
  at += 3;
  const char *end = strstr(at, "\n  ```");
  ck_assert_ptr_nonnull(end);
  /* The doc's lines, indented in a list item, with a path of our own. */
  char *missing = cs_asprintf("%s/tls.crt", tmpdir);
  cs_buf want;
  cs_buf_init(&want, 1 << 16);
  for (const char *p = at; p < end;) {
    const char *nl = strchr(p, '\n');
    const char *line_end = nl && nl < end ? nl : end;
    const char *path = strstr(p, doc_path);
    if (path && path < line_end) {
      cs_buf_append(&want, p, (size_t)(path - p));
      cs_buf_puts(&want, missing);
      p = path + strlen(doc_path);
    }
    cs_buf_append(&want, p, (size_t)(line_end - p));
    cs_buf_putc(&want, '\n');
    p = line_end + 1;
    p += strspn(p, " ");
  }
  cs_buf_putc(&want, '\0');
  static run_result r;
  char *key = write_file("tls.key", "unused");
  char *argv[] = {"carbonshift", "serve",      "--listen",
                  "127.0.0.1:0", "--tls-cert", missing,
                  "--tls-key",   key,          NULL};
  char *envp[] = {NULL};
  run(argv, envp, &r);
  ck_assert_int_eq(r.status, 2);
  ck_assert_str_eq(r.err, want.data);
  cs_buf_free(&want);

  tu_tls t;
  ck_assert(tu_tls_make(&t));
  char *argv2[] = {"carbonshift", "serve",      "--listen",
                   "127.0.0.1:0", "--tls-cert", t.server_cert,
                   "--tls-key",   t.client_key, NULL};
  run(argv2, envp, &r);
  tu_tls_cleanup(&t);
  ck_assert_msg(r.status == 1, "exit %d:\n%s", r.status, r.err);
  ASSERT_HAS(r.out, "\"msg\":\"Cannot start the server\"");
  ASSERT_HAS(r.out, "are not a usable PEM pair (an unencrypted key matching "
                    "the first certificate): ");
  free(key);
  free(missing);
}
END_TEST

/* Every command `carbonshift help` lists, help itself included, prints the
 * same usage on stdout with exit 0 for `help COMMAND`, `COMMAND -h` and
 * `COMMAND --help`, and nothing on stderr; the list names config-reference
 * and help. A command added to the list is checked without a change here. */
START_TEST(test_config_binary_help_for_every_command)
{
  static run_result r;
  char *envp[] = {NULL};
  char *list_argv[] = {"carbonshift", "help", NULL};
  run(list_argv, envp, &r);
  ck_assert_int_eq(r.status, 0);
  const char *p = strstr(r.out, "\nCommands:\n");
  ck_assert_ptr_nonnull(p);
  p += strlen("\nCommands:\n");
  char names[16][32];
  size_t n = 0;
  /* "  NAME   summary" lines, up to the first blank one. */
  while (!strncmp(p, "  ", 2) && p[2] != ' ' && n < 16) {
    snprintf(names[n++], sizeof(names[0]), "%.*s", (int)strcspn(p + 2, " \n"),
             p + 2);
    p = strchr(p, '\n') + 1;
  }
  bool has_ref = false, has_help = false;
  for (size_t i = 0; i < n; i++) {
    has_ref |= !strcmp(names[i], "config-reference");
    has_help |= !strcmp(names[i], "help");
  }
  ck_assert_msg(n >= 6 && has_ref && has_help, "commands listed:\n%s", r.out);
  static char want[sizeof(r.out)];
  for (size_t i = 0; i < n; i++) {
    char *help_argv[] = {"carbonshift", "help", names[i], NULL};
    run(help_argv, envp, &r);
    ck_assert_msg(r.status == 0, "help %s: exit %d: %s", names[i], r.status,
                  r.err);
    ck_assert_msg(!strncmp(r.out, "Usage: carbonshift ", 19), "help %s: %s",
                  names[i], r.out);
    ck_assert_str_eq(r.err, "");
    snprintf(want, sizeof(want), "%s", r.out);
    static const char *const flags[] = {"-h", "--help"};
    for (size_t k = 0; k < 2; k++) {
      char *argv[] = {"carbonshift", names[i], (char *)flags[k], NULL};
      run(argv, envp, &r);
      ck_assert_msg(r.status == 0, "%s %s: exit %d: %s", names[i], flags[k],
                    r.status, r.err);
      ck_assert_msg(!strcmp(r.out, want), "%s %s printed:\n%s\nnot:\n%s",
                    names[i], flags[k], r.out, want);
      ck_assert_str_eq(r.err, "");
    }
  }
  /* After other arguments too, where a command takes them. */
  char *late[] = {"carbonshift", "simulate", "--json", "--help", NULL};
  run(late, envp, &r);
  ck_assert_int_eq(r.status, 0);
  ASSERT_HAS(r.out, "Usage: carbonshift simulate");
}
END_TEST

static Suite *config_suite(void)
{
  Suite *s = suite_create("config");
  TCase *tc = tcase_create("core");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, test_config_defaults_values);
  tcase_add_test(tc, test_config_load_precedence_file_env_flag);
  tcase_add_test(tc, test_config_load_bad_values_all_reported);
  tcase_add_test(tc, test_config_load_long_string_says_length);
  tcase_add_test(tc, test_config_load_file_wrong_types);
  tcase_add_test(tc, test_config_load_file_unknown_key);
  tcase_add_test(tc, test_config_load_file_line_break_in_key_one_line);
  tcase_add_test(tc, test_config_load_file_bad_json);
  tcase_add_test(tc, test_config_print_redacts_secrets);
  tcase_add_test(tc, test_config_probe_listen_checked);
  tcase_add_test(tc, test_config_refresh_interval_below_max_age);
  tcase_add_test(tc, test_config_load_tls_pairs);
  tcase_add_test(tc, test_config_load_kube_kubeconfig_mode_needs_path);
  tcase_add_test(tc, test_config_docs_kubernetes_names_real_settings);
  tcase_add_test(tc, test_config_docs_list_every_flag);
  tcase_add_test(tc, test_config_load_watttime_login_needs_both);
  tcase_add_test(tc, test_config_load_json_settings_repeated_keys);
  tcase_add_test(tc, test_config_flags_take_set);
  tcase_add_test(tc, test_config_load_json_settings);
  tcase_add_test(tc, test_config_load_env_unknown_warns);
  tcase_add_test(tc, test_config_error_external_check);
  tcase_add_test(tc, test_config_reference_matches_docs);
  suite_add_tcase(s, tc);
  TCase *tb = tcase_create("binary");
  tcase_add_checked_fixture(tb, setup, teardown);
  tcase_set_timeout(tb, 60);
  tcase_add_test(tb, test_config_binary_print_config);
  tcase_add_test(tb, test_config_binary_print_config_checks_start);
  tcase_add_test(tb, test_config_binary_bad_config_exits_2);
  tcase_add_test(tb, test_config_binary_paths_not_regular_files_refused);
  tcase_add_test(tb, test_config_binary_zone_ids_of_every_provider);
  tcase_add_test(tb, test_config_binary_dedup_window_range);
  tcase_add_test(tb, test_config_binary_gpus_all_problems_in_one_run);
  tcase_add_test(tb, test_config_binary_object_setting_all_problems_in_one_run);
  tcase_add_test(tb, test_config_binary_docs_examples_load);
  tcase_add_test(tb, test_config_binary_tls_errors_as_documented);
  tcase_add_test(tb, test_config_binary_help_for_every_command);
  suite_add_tcase(s, tb);
  return s;
}

int main(void)
{
  SRunner *sr = srunner_create(config_suite());
  srunner_run_all(sr, CK_ENV);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
