/* http_strict: the framing scanner that runs ahead of http_parser on every
 * byte a client sends. http_parser 2.9 (as Debian builds it) lets through
 * request shapes that other HTTP implementations read differently, the
 * primitives of request smuggling behind a front proxy: whitespace before a
 * header's colon, obs-fold, bare LF line ends, chunk data not followed by
 * CRLF, whitespace after a chunk size. This scanner refuses them (400) and
 * hands the parser only what it checked. Private to common/ (http_conn.c). */
#include "http_server_int.h"

#include <stdint.h>
#include <string.h>
#include <strings.h>

static int hexval(unsigned char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    ch |= 0x20;
    return ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

/* Checks data[0..len) ahead of the parser: the head's line ends (CRLF only,
 * RFC 9112 2.2), no obs-fold (5.2) and, for a chunked body, exact chunk
 * framing (7.1). Returns how many bytes the parser may take (up to the end
 * of a head or of a chunked body, so that the next message is scanned from
 * its start), or 0 with *why set when the bytes are not strict HTTP/1.1.
 * Lines are searched with memchr: the cost per request is a few calls. */
size_t hs_strict_scan(hs_conn_t *c, const char *data, size_t len, const char **why)
{
    const char *p = data, *end = data + len;
    while (p < end) {
        unsigned char ch = (unsigned char)*p;
        switch (c->scan) {
        case SC_START:
            c->scan_te = false;
            c->scan_cr = false;
            if (ch == '\n')
                goto bare_lf;
            c->scan = ch == '\r' ? SC_START_LF : SC_LINE;
            p += ch == '\r';
            break;
        case SC_START_LF:
            if (ch != '\n')
                goto bad_eol;
            c->scan = SC_START;
            p++;
            break;
        case SC_LINE:
        case SC_TLINE: {
            /* (a CR inside a line, not before its LF, http_parser refuses itself) */
            if (c->scan_cr && ch != '\n')
                goto bad_eol; /* the CR that ended the last read */
            const char *lf = memchr(p, '\n', (size_t)(end - p));
            if (!lf) {
                c->scan_cr = end[-1] == '\r';
                return len;
            }
            if (!(lf > p ? lf[-1] == '\r' : c->scan_cr))
                goto bare_lf;
            c->scan_cr = false;
            c->scan = c->scan == SC_LINE ? SC_LINE_START : SC_TSTART;
            p = lf + 1;
            break;
        }
        case SC_LINE_START:
        case SC_TSTART:
            if (ch == '\n')
                goto bare_lf;
            if (ch == ' ' || ch == '\t') {
                *why = "Obsolete line folding (a header line starting with whitespace)";
                return 0;
            }
            if (ch == '\r') {
                c->scan = c->scan == SC_LINE_START ? SC_END_LF : SC_TEND_LF;
            } else {
                c->scan_cr = false; /* SC_LINE reads it as the byte before its first */
                /* a Transfer-Encoding line: the body may be chunked, so the
                 * head is handed over alone and the body scanned once the
                 * parser has said what it is (a line cut by the read counts) */
                if (c->scan == SC_LINE_START && (ch | 0x20) == 't' &&
                    ((size_t)(end - p) < 18 || strncasecmp(p, "transfer-encoding", 17) == 0))
                    c->scan_te = true;
                c->scan = c->scan == SC_LINE_START ? SC_LINE : SC_TLINE;
            }
            p++;
            break;
        case SC_END_LF:
        case SC_TEND_LF:
            if (ch != '\n')
                goto bad_eol;
            if (c->scan == SC_END_LF && !c->scan_te) {
                c->scan = SC_NONE; /* no body, or a Content-Length one: nothing more to see */
                return len;
            }
            /* the head (or the chunked message) ends here: the parser stops
             * at it, and what follows is scanned once it knows what it is */
            c->scan = c->scan == SC_END_LF ? SC_HEAD_END : SC_NONE;
            return (size_t)(p + 1 - data);
        case SC_HEAD_END:
            c->scan = c->scan_next; /* this LF was scanned already */
            c->chunk_left = 0;
            c->chunk_digits = 0;
            p++;
            break;
        case SC_NONE:
            return len;
        case SC_CSIZE: {
            int v = hexval(ch);
            if (v >= 0) {
                if (++c->chunk_digits > 15) {
                    *why = "Chunk size too large";
                    return 0;
                }
                c->chunk_left = c->chunk_left * 16 + (uint64_t)v;
                p++;
                break;
            }
            if (c->chunk_digits == 0 || (ch != ' ' && ch != '\t' && ch != ';' && ch != '\r'))
                goto bad_chunk;
            c->scan = ch == '\r' ? SC_CSIZE_LF : ch == ';' ? SC_CEXT : SC_CSIZE_WS;
            p++;
            break;
        }
        case SC_CSIZE_WS: /* BWS is allowed before ";ext", not before the CRLF */
            if (ch == ';')
                c->scan = SC_CEXT;
            else if (ch != ' ' && ch != '\t')
                goto bad_chunk;
            p++;
            break;
        case SC_CEXT:
            if (ch == '\n')
                goto bare_lf;
            if (ch == '\r')
                c->scan = SC_CSIZE_LF;
            p++;
            break;
        case SC_CSIZE_LF:
            if (ch != '\n')
                goto bad_eol;
            c->scan = c->chunk_left ? SC_CDATA : SC_TSTART;
            p++;
            break;
        case SC_CDATA: {
            size_t k = (size_t)(end - p);
            if (c->chunk_left < k)
                k = (size_t)c->chunk_left;
            c->chunk_left -= k;
            p += k;
            if (c->chunk_left == 0)
                c->scan = SC_CDATA_CR;
            break;
        }
        case SC_CDATA_CR:
            if (ch != '\r') {
                *why = "Chunk data not followed by CRLF";
                return 0;
            }
            c->scan = SC_CDATA_LF;
            p++;
            break;
        case SC_CDATA_LF:
            if (ch != '\n') {
                *why = "Chunk data not followed by CRLF";
                return 0;
            }
            c->scan = SC_CSIZE;
            c->chunk_digits = 0;
            p++;
            break;
        }
    }
    c->scan_cr = end[-1] == '\r';
    return len;
bare_lf:
    *why = "Bare LF line ending (CRLF required)";
    return 0;
bad_eol:
    *why = "CR not followed by LF";
    return 0;
bad_chunk:
    *why = "Invalid chunk size line";
    return 0;
}
