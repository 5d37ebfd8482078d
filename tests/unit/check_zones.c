/* Unit tests for carbon/zones: the built-in region table and overrides. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "carbon/zones.h"

static cs_zone_map *zm;

static void setup(void)
{
  zm = cs_zone_map_new();
}

static void teardown(void)
{
  cs_zone_map_free(zm);
  zm = NULL;
}

START_TEST(test_zones_lookup_builtin_aws)
{
  ck_assert_str_eq(cs_zone_map_lookup(zm, "eu-central-1"), "DE");
  ck_assert_str_eq(cs_zone_map_lookup(zm, "us-east-1"), "US-MIDA-PJM");
  ck_assert_str_eq(cs_zone_map_lookup(zm, "us-west-1"), "US-CAL-CISO");
  ck_assert_str_eq(cs_zone_map_lookup(zm, "us-west-2"), "US-NW-PACW");
  ck_assert_str_eq(cs_zone_map_lookup(zm, "eu-north-1"), "SE-SE3");
  ck_assert_str_eq(cs_zone_map_lookup(zm, "ap-southeast-2"), "AU-NSW");
}
END_TEST

START_TEST(test_zones_lookup_builtin_gcp)
{
  ck_assert_str_eq(cs_zone_map_lookup(zm, "europe-west3"), "DE");
  ck_assert_str_eq(cs_zone_map_lookup(zm, "europe-north1"), "FI");
  ck_assert_str_eq(cs_zone_map_lookup(zm, "europe-north2"), "SE-SE3");
  ck_assert_str_eq(cs_zone_map_lookup(zm, "us-west2"), "US-CAL-CISO");
  ck_assert_str_eq(cs_zone_map_lookup(zm, "us-south1"), "US-TEX-ERCO");
  ck_assert_str_eq(cs_zone_map_lookup(zm, "europe-southwest1"), "ES");
}
END_TEST

START_TEST(test_zones_lookup_builtin_azure)
{
  ck_assert_str_eq(cs_zone_map_lookup(zm, "westeurope"), "NL");
  ck_assert_str_eq(cs_zone_map_lookup(zm, "northeurope"), "IE");
  ck_assert_str_eq(cs_zone_map_lookup(zm, "norwayeast"), "NO-NO1");
  ck_assert_str_eq(cs_zone_map_lookup(zm, "southeastasia"), "SG");
  ck_assert_str_eq(cs_zone_map_lookup(zm, "japaneast"), "JP-TK");
}
END_TEST

START_TEST(test_zones_lookup_unknown_is_null)
{
  ck_assert_ptr_null(cs_zone_map_lookup(zm, "mars-north-1"));
  ck_assert_ptr_null(cs_zone_map_lookup(zm, ""));
  ck_assert_ptr_null(cs_zone_map_lookup(zm, NULL));
  /* Exact and case-sensitive, as the clouds write region names. */
  ck_assert_ptr_null(cs_zone_map_lookup(zm, "EU-CENTRAL-1"));
  ck_assert_ptr_null(cs_zone_map_lookup(zm, "eu-central-1a"));
}
END_TEST

START_TEST(test_zones_builtin_table_is_consistent)
{
  size_t n = cs_zone_map_count(zm);
  ck_assert_uint_ge(n, 80);
  for (size_t i = 0; i < n; i++) {
    const char *r, *z;
    cs_zone_map_at(zm, i, &r, &z);
    ck_assert_ptr_nonnull(r);
    ck_assert_ptr_nonnull(z);
    ck_assert_uint_gt(strlen(z), 0);
    /* No region twice: a later entry would silently never be used. */
    for (size_t j = 0; j < i; j++) {
      const char *r2, *z2;
      cs_zone_map_at(zm, j, &r2, &z2);
      ck_assert_msg(strcmp(r, r2) != 0, "region %s listed twice", r);
    }
    ck_assert_str_eq(cs_zone_map_lookup(zm, r), z);
  }
  const char *r = "x", *z = "x";
  cs_zone_map_at(zm, n, &r, &z);
  ck_assert_ptr_null(r);
  ck_assert_ptr_null(z);
}
END_TEST

START_TEST(test_zones_set_overrides_builtin)
{
  size_t n = cs_zone_map_count(zm);
  ck_assert_int_eq(cs_zone_map_set(zm, "us-west-2", "US-NW-BPAT"), CS_OK);
  ck_assert_str_eq(cs_zone_map_lookup(zm, "us-west-2"), "US-NW-BPAT");
  ck_assert_uint_eq(cs_zone_map_count(zm), n);
}
END_TEST

START_TEST(test_zones_set_adds_region)
{
  size_t n = cs_zone_map_count(zm);
  ck_assert_int_eq(cs_zone_map_set(zm, "onprem-fra-2", "DE"), CS_OK);
  ck_assert_str_eq(cs_zone_map_lookup(zm, "onprem-fra-2"), "DE");
  ck_assert_uint_eq(cs_zone_map_count(zm), n + 1);
}
END_TEST

START_TEST(test_zones_set_rejects_bad_input)
{
  ck_assert_int_eq(cs_zone_map_set(zm, "", "DE"), CS_EINVAL);
  ck_assert_int_eq(cs_zone_map_set(zm, "eu-central-1", ""), CS_EINVAL);
  ck_assert_int_eq(cs_zone_map_set(zm, NULL, "DE"), CS_EINVAL);
  ck_assert_int_eq(cs_zone_map_set(zm, "eu central", "DE"), CS_EINVAL);
  ck_assert_int_eq(cs_zone_map_set(zm, "EU-CENTRAL-1", "DE"), CS_EINVAL);
  ck_assert_int_eq(cs_zone_map_set(zm, "eu-central-1", "D E"), CS_EINVAL);
  ck_assert_int_eq(cs_zone_map_set(zm, "eu-central-1", "DE\n"), CS_EINVAL);
  char longzone[64];
  memset(longzone, 'A', sizeof(longzone) - 1);
  longzone[sizeof(longzone) - 1] = '\0';
  ck_assert_int_eq(cs_zone_map_set(zm, "eu-central-1", longzone), CS_EINVAL);
  /* Nothing changed. */
  ck_assert_str_eq(cs_zone_map_lookup(zm, "eu-central-1"), "DE");
}
END_TEST

START_TEST(test_zones_set_caps_entries)
{
  cs_err rc = CS_OK;
  char region[32];
  for (int i = 0; i < 2000 && rc == CS_OK; i++) {
    snprintf(region, sizeof(region), "r-%d", i);
    rc = cs_zone_map_set(zm, region, "DE");
  }
  ck_assert_int_eq(rc, CS_ETOOBIG);
  ck_assert_uint_eq(cs_zone_map_count(zm), 1024);
}
END_TEST

int main(void)
{
  Suite *s = suite_create("zones");
  TCase *tc = tcase_create("core");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_zones_lookup_builtin_aws);
  tcase_add_test(tc, test_zones_lookup_builtin_gcp);
  tcase_add_test(tc, test_zones_lookup_builtin_azure);
  tcase_add_test(tc, test_zones_lookup_unknown_is_null);
  tcase_add_test(tc, test_zones_builtin_table_is_consistent);
  tcase_add_test(tc, test_zones_set_overrides_builtin);
  tcase_add_test(tc, test_zones_set_adds_region);
  tcase_add_test(tc, test_zones_set_rejects_bad_input);
  tcase_add_test(tc, test_zones_set_caps_entries);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_ENV);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
