/* web_assets: the dashboard's and the playground's files, embedded in the
 * router. The table is generated (web/build.mjs writes web_assets.c from
 * web/src; committed, so the router builds without Node); api_static.c
 * serves it. */
#ifndef RT_WEB_ASSETS_H
#define RT_WEB_ASSETS_H

#include <stdbool.h>
#include <stddef.h>

typedef struct {
    const char *path;          /* the URL path: "/dashboard", "/dashboard/assets/<name>-<hash>.js" */
    const char *content_type;  /* with "; charset=utf-8" for text */
    const unsigned char *raw;  /* the file */
    size_t raw_len;
    const unsigned char *gz;   /* its gzip encoding; NULL (0) where gzip would not be smaller */
    size_t gz_len;
    const char *etag;          /* strong, quoted: the first 128 bits of raw's SHA-256 in hex */
    const char *etag_gz;       /* the gzip representation's: etag with "-gz" */
    bool hashed;               /* the name holds the content's hash: cacheable forever */
} rt_web_asset_t;

/* Sorted by path (strcmp). */
extern const rt_web_asset_t rt_web_assets[];
extern const size_t rt_web_assets_count;

#endif
