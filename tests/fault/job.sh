# job.sh: the small training job the fault tests run (source it).
# small_job FILE DATA_DIR OUTPUT_DIR EPOCHS [VALIDATION] writes it: small_cnn
# at 32 px, batch 4, one thread; it ends with the [dist] section, so more
# [dist] keys can be appended to FILE.
small_job() {
  cat > "$1" <<INI
[model]
arch = small_cnn
input_size = 32
[data]
train = $2/train
validation = ${5:-$2/validation}
batch_size = 4
threads = 1
[train]
epochs = $4
verbose = 2
[output]
dir = $3
[dist]
threads = 1
INI
}
