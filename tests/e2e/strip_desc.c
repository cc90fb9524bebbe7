/* strip_desc.c: strip_desc CKPT OUT: OUT becomes CKPT as mpifit wrote
 * checkpoints before they carried a model description: the model_*
 * attributes removed (the config text and the class names stay), and the
 * user block with the whole-file checksum line left out, as in checkpoints
 * older still (the readers accept a file without one; the edit would not
 * match it any more).
 * For predict.sh: `predict --weights OLD_CKPT` rebuilds the model from the
 * stored config text. Exit status 0, or 1 naming what failed. */
#include <hdf5.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: strip_desc CKPT OUT\n");
        return 2;
    }
    FILE *in = fopen(argv[1], "rb"), *out = fopen(argv[2], "wb");
    if (!in || !out) {
        fprintf(stderr, "strip_desc: cannot open %s or %s\n", argv[1], argv[2]);
        return 1;
    }
    static char buf[1 << 16];
    size_t n, total = 0;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0) {
        size_t skip = total == 0 && n >= 512 && strncmp(buf, "mpifit-crc32 ", 13) == 0 ? 512 : 0;
        fwrite(buf + skip, 1, n - skip, out); /* HDF5 finds its signature at 0 instead */
        total += n;
    }
    fclose(in);
    if (fclose(out) != 0) {
        fprintf(stderr, "strip_desc: writing %s failed\n", argv[2]);
        return 1;
    }
    hid_t f = H5Fopen(argv[2], H5F_ACC_RDWR, H5P_DEFAULT);
    const char *attrs[] = {"model_arch",    "model_alpha",   "model_input_size",
                           "model_classes", "model_dropout", "model_bn_momentum"};
    int bad = f < 0;
    for (int i = 0; !bad && i < 6; i++)
        bad = H5Adelete(f, attrs[i]) < 0;
    if (f >= 0 && H5Fclose(f) < 0)
        bad = 1;
    if (bad)
        fprintf(stderr, "strip_desc: %s has no model description to remove\n", argv[2]);
    return bad;
}
