#!/usr/bin/env bash
# Download the real training/test sets where this machine has internet, and check their SHA-256 sums.
#
#   datasets/download.sh [--dest DIR] [SET ...]     SET: div2k flickr2k benchmark bsds500 wed cbsd68 (default: all)
#
# Checksums: this repository ships NO upstream checksums for these archives (the dataset authors publish none that
# we could confirm, and we do not invent them). On the first download of an archive the script computes its
# SHA-256 and records it in DIR/SHA256SUMS ("trust on first use"); every later run, and every re-download, is
# checked against that record and a mismatch stops the script. Commit or keep DIR/SHA256SUMS to pin what you used.
#
# Sets without a public direct link (Manga109: request form; Rain100L/H, RainTrainL/H: JORDER project page;
# LOL: BMVC 2018 project page, Google Drive) are listed at the end with where to get them; put them under DIR by
# hand in the layouts of datasets/README.md.
set -euo pipefail

DEST="datasets/real"
if [[ "${1:-}" == "--dest" ]]; then DEST="$2"; shift 2; fi
SETS=("$@")
[[ ${#SETS[@]} -eq 0 ]] && SETS=(div2k flickr2k benchmark bsds500 wed cbsd68)
mkdir -p "$DEST"
SUMS="$DEST/SHA256SUMS"
touch "$SUMS"

sha() { sha256sum "$1" | cut -d' ' -f1; }

# fetch URL FILE: download (resumable) into DEST/FILE, then check or record its SHA-256.
fetch() {
  local url="$1" file="$DEST/$2"
  if [[ ! -s "$file" ]]; then
    echo "downloading $url"
    curl -fL --retry 3 -C - -o "$file.part" "$url"
    mv "$file.part" "$file"
  fi
  local got; got=$(sha "$file")
  local want; want=$(awk -v f="$2" '$2 == f { print $1 }' "$SUMS")
  if [[ -z "$want" ]]; then
    echo "$got  $2" >> "$SUMS"
    echo "recorded sha256 $got for $2 (first download: no upstream checksum known; later runs check against it)"
  elif [[ "$want" != "$got" ]]; then
    echo "error: $file: sha256 $got does not match the recorded $want (corrupt or changed download)" >&2
    exit 1
  else
    echo "ok $2 ($got)"
  fi
}

unpack() {  # unpack ARCHIVE into DEST once
  local a="$DEST/$1" mark="$DEST/.unpacked-$1"
  [[ -e "$mark" ]] && return
  case "$a" in
    *.zip) unzip -q -o "$a" -d "$DEST" ;;
    *.tar) tar -xf "$a" -C "$DEST" ;;
    *.tgz|*.tar.gz) tar -xzf "$a" -C "$DEST" ;;
    *.rar) command -v unrar >/dev/null && unrar x -o+ "$a" "$DEST/" >/dev/null || { echo "install unrar to unpack $a" >&2; return; } ;;
  esac
  touch "$mark"
}

for s in "${SETS[@]}"; do
  case "$s" in
    div2k)   # DIV2K (NTIRE 2017), ETH Zurich: 800 train + 100 valid HR, official MATLAB-bicubic LR x2/x3/x4
      base=http://data.vision.ee.ethz.ch/cvl/DIV2K
      for f in DIV2K_train_HR.zip DIV2K_valid_HR.zip DIV2K_train_LR_bicubic_X2.zip DIV2K_train_LR_bicubic_X3.zip \
               DIV2K_train_LR_bicubic_X4.zip; do fetch "$base/$f" "$f"; unpack "$f"; done ;;
    flickr2k)  # Flickr2K (EDSR authors, SNU): 2650 HR + bicubic LR
      fetch https://cv.snu.ac.kr/research/EDSR/Flickr2K.tar Flickr2K.tar; unpack Flickr2K.tar ;;
    benchmark)  # Set5, Set14, B100, Urban100 with HR/ and LR_bicubic/X{2,3,4}/ (EDSR benchmark package)
      fetch https://cv.snu.ac.kr/research/EDSR/benchmark.tar benchmark.tar; unpack benchmark.tar ;;
    bsds500)  # Berkeley BSDS500: BSD400 = its 200 train + 200 test images (colour JPEG)
      fetch https://www2.eecs.berkeley.edu/Research/Projects/CS/vision/grouping/BSR/BSR_bsds500.tgz BSR_bsds500.tgz
      unpack BSR_bsds500.tgz ;;
    wed)  # Waterloo Exploration Database (4744 colour .bmp)
      fetch https://ece.uwaterloo.ca/~k29ma/dataset/exploration_database_and_code.rar exploration_database_and_code.rar
      unpack exploration_database_and_code.rar ;;
    cbsd68)  # CBSD68 (colour BSD68) as packaged by clausmichele/CBSD68-dataset
      fetch https://github.com/clausmichele/CBSD68-dataset/archive/refs/heads/master.zip CBSD68-dataset-master.zip
      unpack CBSD68-dataset-master.zip ;;
    *) echo "unknown set '$s' (known: div2k flickr2k benchmark bsds500 wed cbsd68)" >&2; exit 2 ;;
  esac
done

cat <<'MSG'
Manual downloads (no direct public link):
  Manga109      http://www.manga109.org/en/download.html (request form; academic use)
  Rain100L/H,   https://www.icst.pku.edu.cn/struct/Projects/joint_rain_removal.html (JORDER, Yang et al. CVPR 2017)
  RainTrainL/H
  LOL (v1)      https://daooshee.github.io/BMVC2018website/ (Wei et al. BMVC 2018)
MSG
