#include "model_name.h"

#include <ctype.h>
#include <strings.h>

bool cm_model_quant_tag(const char *s)
{
    if (strcasecmp(s, "f16") == 0 || strcasecmp(s, "f32") == 0 || strcasecmp(s, "bf16") == 0 ||
        strcasecmp(s, "fp16") == 0 || strcasecmp(s, "fp32") == 0)
        return true;
    const char *p = s;
    if (tolower((unsigned char)*p) == 'i')
        p++;
    if (tolower((unsigned char)*p) != 'q')
        return false;
    p++;
    if (!isdigit((unsigned char)*p))
        return false;
    while (isdigit((unsigned char)*p))
        p++;
    while (*p == '_') { /* _K, _M, _0, _4_4 */
        p++;
        if (!isalnum((unsigned char)*p))
            return false;
        while (isalnum((unsigned char)*p))
            p++;
    }
    return *p == '\0';
}
