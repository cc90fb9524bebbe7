/* keras_full_check.c: keras_full_check OUT.h5 CKPT: OUT.h5 (mpifit export
 * --full) rebuilds with mf_model_from_keras, and every weight it loads equals
 * the checkpoint's bit for bit (the same model with the checkpoint's weights
 * loaded by layer name is the reference). Prints the model's layer count;
 * exit status 0, or 1 naming what differs. */
#include <stdio.h>
#include <string.h>
#include "mpifit.h"

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: keras_full_check OUT.h5 CKPT\n");
        return 2;
    }
    mf_model *a = NULL, *b = NULL;
    mf_keras_info info;
    mf_weights_report r;
    /* b: from OUT.h5 with its weights; a: the same description, then the
     * checkpoint's weights (another seed first, so nothing matches by chance) */
    if (mf_model_from_keras_info(&b, argv[1], 1, &info) != MF_STATUS_OK || !info.weights_loaded ||
        mf_model_from_keras(&a, argv[1], 2) != MF_STATUS_OK || mf_weights_load_keras(a, argv[2], &r) != MF_STATUS_OK) {
        fprintf(stderr, "keras_full_check: %s\n", mf_last_error());
        return 1;
    }
    int bad = r.missing_layers != 0;
    if (bad)
        fprintf(stderr, "keras_full_check: layers not in %s: %s\n", argv[2], r.missing);
    for (int i = 0; i < mf_model_num_param_tensors(a); i++) {
        mf_param_info pa = mf_model_param(a, i), pb = mf_model_param(b, i);
        const float *va = (pa.kind == MF_PARAM_STATE ? mf_model_state(a) : mf_model_params(a)) + pa.offset;
        const float *vb = (pb.kind == MF_PARAM_STATE ? mf_model_state(b) : mf_model_params(b)) + pb.offset;
        if (strcmp(pa.layer, pb.layer) || strcmp(pa.name, pb.name) || pa.numel != pb.numel ||
            memcmp(va, vb, pa.numel * sizeof(float))) {
            fprintf(stderr, "keras_full_check: %s/%s differs\n", pa.layer, pa.name);
            bad = 1;
        }
    }
    printf("%d layers, %d weights, softmax folded from %s\n", mf_model_num_layers(b), mf_model_num_param_tensors(b),
           info.softmax_folded ? info.softmax_layer : "(none)");
    mf_model_free(a);
    mf_model_free(b);
    return bad;
}
