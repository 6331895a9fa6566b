/* The router's whole HTTP surface and its authorization policy, in one table:
 * a reader sees who may call what without reading the handlers. */
#include "router.h"

#include "handlers.h"
#include "util.h"

const cm_http_route_t rt_routes[] = {
    { "GET", "/health", rt_h_health, RT_POLICY_OPEN },
};
const size_t rt_routes_count = CM_ARRAY_LEN(rt_routes);
