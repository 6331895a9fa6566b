/* api_offload: rt_offload, the management handlers' way to run blocking work
 * (password hashing, synchronous SQLite) on the offload pool and answer on
 * the request's loop. See handlers.h. */
#include "api/handlers.h"

#include "router.h"

#include "log.h"
#include "offload.h"
#include "util.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

/* One request's job: what the pool carries between work and done. */
typedef struct {
    cm_http_req_t *req;
    const rt_offload_ops_t *ops;
    void *arg;
} call_t;

static void unavailable(cm_http_req_t *req)
{
    cm_http_add_header(req, "Retry-After", "1");
    cm_http_reply_error(req, 503, "server_error", "shutting_down", NULL,
                        "The server is shutting down; retry");
}

static void busy(cm_http_req_t *req)
{
    cm_http_add_header(req, "Retry-After", "1");
    cm_http_reply_error(req, 503, "server_error", "busy", NULL,
                        "The router is busy with too many background operations; retry");
}

static void call_work(void *arg)
{
    call_t *c = arg;
    c->ops->work(c->arg);
}

static void call_done(void *arg, cm_offload_status_t status)
{
    call_t *c = arg;
    if (status == CM_OFFLOAD_DONE)
        c->ops->done(c->req, c->arg);
    else if (status == CM_OFFLOAD_REFUSED)
        busy(c->req); /* an urgent job took its place in the queue */
    else
        unavailable(c->req); /* stopped before a thread took it */
    c->ops->free(c->arg);
    free(c);
}

static int submit(void *router, cm_http_req_t *req, const rt_offload_ops_t *ops, void *arg,
                  bool urgent)
{
    cm_offload_t *pool = ((rt_router_t *)router)->offload;
    call_t *c = cm_xmalloc(sizeof(*c));
    *c = (call_t){ .req = req, .ops = ops, .arg = arg };
    int rc = !pool ? -EBUSY
             : urgent ? cm_offload_submit_urgent(pool, cm_http_req_base(req), call_work, call_done, c)
                      : cm_offload_submit(pool, cm_http_req_base(req), call_work, call_done, c);
    if (rc == 0)
        return 0;
    free(c);
    if (rc == -ESHUTDOWN) {
        unavailable(req);
    } else {
        busy(req);
    }
    ops->free(arg);
    return -1;
}

int rt_offload(void *router, cm_http_req_t *req, const rt_offload_ops_t *ops, void *arg)
{
    return submit(router, req, ops, arg, false);
}

int rt_offload_urgent(void *router, cm_http_req_t *req, const rt_offload_ops_t *ops, void *arg)
{
    return submit(router, req, ops, arg, true);
}
