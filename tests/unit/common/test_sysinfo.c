/* common/sysinfo.c: /proc parsers and a live reading. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "sysinfo.h"
#include "util.h"

#include <unistd.h>

static void test_stat(void **state)
{
    (void)state;
    uint64_t busy, total;
    assert_int_equal(cm_sysinfo_parse_stat("cpu  10 2 30 400 50 6 7 8 0 0\ncpu0 1 2 3 4\n", &busy, &total), 0);
    assert_int_equal(total, 513);
    assert_int_equal(busy, 513 - 400 - 50);
    assert_int_equal(cm_sysinfo_parse_stat("intr 1 2 3", &busy, &total), -1);
    assert_int_equal(cm_sysinfo_parse_stat("cpu  1 2", &busy, &total), -1);
}

static void test_meminfo(void **state)
{
    (void)state;
    uint64_t t, a;
    assert_int_equal(cm_sysinfo_parse_meminfo("MemTotal:  1000 kB\nMemFree: 10 kB\nMemAvailable:   250 kB\n", &t, &a), 0);
    assert_int_equal(t, 1024000);
    assert_int_equal(a, 256000);
    assert_int_equal(cm_sysinfo_parse_meminfo("MemTotal: 5 kB\n", &t, &a), -1);
}

static void test_live(void **state)
{
    (void)state;
    cm_sysinfo_sampler_t *s = cm_sysinfo_new();
    cm_sysinfo_t si;
    cm_sysinfo_read(s, &si);
    usleep(20000);
    cm_sysinfo_read(s, &si);
    assert_true(si.cpu_usage >= 0 && si.cpu_usage <= 100);
    assert_true(si.memory_usage > 0 && si.memory_usage <= 100);
    assert_true(si.mem_total > 0);
    assert_true(si.gpu_available == (si.ngpu > 0));
    cm_sysinfo_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stat), cmocka_unit_test(test_meminfo), cmocka_unit_test(test_live),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
