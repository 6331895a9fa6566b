/* model_name: what a GGUF file's name says, shared by the router's catalogue
 * (router/src/models/models_id.c) and the node's scan (node/src/models.c) so
 * that both derive the same model id from the same file name. */
#ifndef CM_MODEL_NAME_H
#define CM_MODEL_NAME_H

#include <stdbool.h>

/* s is a quantisation tag as llama.cpp names them (any case): Q4_K_M,
 * q8_0, IQ2_XS, Q4_0_4_4, F16, BF16, F32, FP16, FP32. */
bool cm_model_quant_tag(const char *s);

#endif
