/* proxy_harness: what the proxy's unit tests share (test_proxy.c,
 * test_proxy_limits.c): real mock_node processes as nodes, a libcurl client,
 * and a fixture that builds what server.c builds (registry, admission queue,
 * proxy) around an in-process HTTP server, with an observer that records
 * what the proxy reports. Every wait has a deadline (WAIT_MS). */
#ifndef PROXY_HARNESS_H
#define PROXY_HARNESS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/admission.h"
#include "core/proxy.h"
#include "core/registry.h"
#include "http_server.h"
#include "json.h"
#include "log.h"
#include "util.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>



#define MAX_NODES 3
#define WAIT_MS 5000 /* the longest any condition is waited for */

static const char plain_body[] = "{\"model\":\"mock\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
static const char stream_body[] =
    "{\"model\":\"mock\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
/* one event of the mock's stream (bench/router/mock_node.c) */
static const char mock_chunk[] =
    "data: {\"id\":\"chatcmpl-mock\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,"
    "\"model\":\"mock\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"tok \"},"
    "\"finish_reason\":null}]}\n\n";

typedef struct {
    pid_t pid;
    int port;
} mock_t;

typedef struct {
    long status;
    CURLcode rc;
    char *body;
    size_t len, cap;
    char ctype[128];
    char retry_after[32];
    size_t abort_after; /* > 0: leave once this many body bytes arrived */
} resp_t;

typedef struct {
    int requests, active, max_active;
} stats_t;

typedef struct {
    pthread_mutex_t mu;
    int begins, ends, end_status, foreign; /* foreign: calls with another cookie */
    char path[64], model[64];
    size_t body_len;
    char *seen; /* the chunks, concatenated */
    size_t seen_len, seen_cap;
    char end_node[RT_NODE_ID_MAX];
    char end_error[160];
    int retries;
    /* the rest of rt_proxy_result_t */
    int attempts;
    char end_name[RT_NODE_NAME_MAX], error_type[48];
    bool sse, times_ordered; /* start <= first byte <= end, queue + upstream <= end - start */
    uint64_t upstream_us;
} rec_t;

typedef struct {
    rt_registry_t *reg;
    rt_admission_t *adm;
    rt_proxy_t *proxy;
    cm_http_server_t *srv;
    int port;
    mock_t mocks[MAX_NODES];
    char ids[MAX_NODES][RT_NODE_ID_MAX];
    int nnodes;
    rec_t rec;
} fx_t;

extern fx_t fx;
extern const rt_proxy_opts_t default_opts;

int closed_port(void);
void resp_free(resp_t *r);
stats_t mock_stats(const mock_t *m);
stats_t mock_settled(const mock_t *m);
void assert_openai_error(const resp_t *r, long status, const char *code);
void assert_generic_message(const char *text);
void router_start(const rt_proxy_opts_t *po, bool observe);
int node_add(int port, int slots, double cpu);
int mock_node(const char *mode, const char *const *extra, int slots, double cpu);
int teardown(void **state);
void assert_node(int i, uint64_t ok, uint64_t failed, bool suspended);
void proxied(const char *body, resp_t *r);
void direct(int i, const char *body, resp_t *r);
void assert_same_body(const resp_t *a, const resp_t *b);

#endif
