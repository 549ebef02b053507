#!/usr/bin/env bash
# Run chosen notebooks in the `paper` profile on a GPU machine, after a capped dry run of each.
#
#   scripts/gpu_paper.sh --data NOTEBOOK...      # print the data folders these notebooks need, and stop
#   scripts/gpu_paper.sh --dry-run NOTEBOOK...   # the capped dry run only (build/paper-check/, estimate table)
#   scripts/gpu_paper.sh NOTEBOOK...             # dry run first; if it passes, the full `paper` runs, in place
#
# Copy to the GPU machine only what --data prints (each folder relative to the data folder, $AE_DATA_DIR or
# data/ in the checkout), e.g. MNIST/ and FreyFace/ for SB_VAE: about 13 MB instead of the 90 MB of all data.
# The script checks those files' checksums before anything trains, refuses to start the full runs without
# CUDA, and commits nothing: review the executed notebooks, results and PDFs, then commit them yourself.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=full
case "${1:-}" in
  --data) mode=data; shift ;;
  --dry-run) mode=dry; shift ;;
  -h|--help|"") sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; [ -n "${1:-}" ]; exit $? ;;
esac
[ $# -gt 0 ] || { echo "error: name at least one notebook, e.g. SB_VAE/SB_VAE.ipynb" >&2; exit 2; }

# The datasets (common.data names) and folders each notebook reads.
datasets_of() {
  case "$(basename "$1")" in
    DenoisingAE.ipynb|RegularizedAE.ipynb|KsparseAE.ipynb) echo "mnist:MNIST" ;;
    VariationalAE.ipynb) echo "mnist:MNIST freyface:FreyFace cryptopunks:CryptoPunks" ;;
    SB_VAE.ipynb) echo "mnist:MNIST freyface:FreyFace" ;;
    BetaVAE_dSprites.ipynb) echo ":dSprites" ;;   # the calibration frames; the images are rendered
    BetaVAE_CelebA.ipynb) echo "celeba:CelebA" ;;
    *) echo "error: unknown notebook $1 (one of */*.ipynb in the paper folders)" >&2; return 2 ;;
  esac
}

names=(); folders=()
for nb in "$@"; do
  [ -f "$nb" ] || { echo "error: no such notebook: $nb" >&2; exit 2; }
  pairs=$(datasets_of "$nb") || exit 2
  for pair in $pairs; do
    names+=("${pair%%:*}"); folders+=("${pair#*:}")
  done
done
folders=($(printf '%s\n' "${folders[@]}" | sort -u))
if [ "$mode" = data ]; then
  printf '%s/\n' "${folders[@]}"
  exit 0
fi

make install >/dev/null
PY=.venv/bin/python
export AE_DATA_DIR="${AE_DATA_DIR:-$PWD/data}"
checks=($(printf '%s\n' "${names[@]}" | grep -v '^$' | sort -u || true))
[ ${#checks[@]} -eq 0 ] || $PY -m common.data check "${checks[@]}"

if [ "$mode" = full ] && ! $PY -c 'import torch, sys; sys.exit(not torch.cuda.is_available())'; then
  echo "error: CUDA is not available here; the paper profile needs a GPU (use --dry-run to test on a CPU)" >&2
  exit 1
fi
$PY -m common.reproduce "$@" --profile paper --dry-run
[ "$mode" = dry ] && exit 0
$PY -m common.reproduce "$@" --profile paper
echo "Done. Nothing was committed: review the notebooks, results and PDFs (git status), then commit them."
