/* Tests common/prom.c: exposition format, label escaping, histograms. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "prom.h"

#include <event2/buffer.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static char *text(struct evbuffer *b)
{
    size_t n = evbuffer_get_length(b);
    char *s = malloc(n + 1);
    evbuffer_remove(b, s, n);
    s[n] = '\0';
    return s;
}

static void samples(void **state)
{
    (void)state;
    struct evbuffer *b = evbuffer_new();
    cm_prom_family(b, "x_total", "counter", "Things\ncounted");
    cm_prom_sample(b, "x_total", 3, "provider", "open\"ai\\", "status", "200", NULL);
    cm_prom_sample(b, "x_total", 0.25, NULL);
    cm_prom_sample(b, "x_total", NAN, NULL);
    char *s = text(b);
    assert_string_equal(s,
                        "# HELP x_total Things\\ncounted\n"
                        "# TYPE x_total counter\n"
                        "x_total{provider=\"open\\\"ai\\\\\",status=\"200\"} 3\n"
                        "x_total 0.25\n"
                        "x_total NaN\n");
    free(s);
    evbuffer_free(b);
}

static void histogram(void **state)
{
    (void)state;
    cm_prom_hist_t h;
    const double bounds[] = { 0.1, 1 };
    cm_prom_hist_init(&h, bounds, 2);
    cm_prom_hist_observe(&h, 0.05);
    cm_prom_hist_observe(&h, 0.1); /* le is inclusive */
    cm_prom_hist_observe(&h, 0.5);
    cm_prom_hist_observe(&h, 7);
    struct evbuffer *b = evbuffer_new();
    const char *labels[] = { "provider", "google" };
    cm_prom_hist_write(b, "lat_seconds", &h, labels, 1);
    char *s = text(b);
    assert_string_equal(s,
                        "lat_seconds_bucket{provider=\"google\",le=\"0.1\"} 2\n"
                        "lat_seconds_bucket{provider=\"google\",le=\"1\"} 3\n"
                        "lat_seconds_bucket{provider=\"google\",le=\"+Inf\"} 4\n"
                        "lat_seconds_sum{provider=\"google\"} 7.6500000000000004\n"
                        "lat_seconds_count{provider=\"google\"} 4\n");
    free(s);
    evbuffer_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(samples),
        cmocka_unit_test(histogram),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
