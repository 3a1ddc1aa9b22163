#!/usr/bin/env bash
# A larger open photo corpus from Debian packages, pinned by SHA-256 (datasets/README.md, "Photo corpus").
#
#   datasets/fetch-photos.sh [--dest DIR] [--cache DIR] [--record] [--if-missing]
#
# For every package named by a kept row of datasets/photos/manifest.tsv: `apt-get download` the pinned version
# (or, when this machine's apt has another, that one, said so) into CACHE/debs, unpack it with `dpkg-deb -x` into
# CACHE/unpacked (nothing is installed), and check each kept file against datasets/photos/sources.sha256. Then, in a
# venv CACHE/venv with pinned numpy and Pillow, datasets/photos/prepare.py writes the photos as PNG (long side at
# most 1024 px, Lanczos) into DEST/train and DEST/test (both emptied first) and adds the bundled samples; the PNGs
# are checked against datasets/photos/photos.sha256; DEST/COMPLETE is written last (the embedded default of
# `adaptir-dist train` uses datasets/photos only when that stamp is there). Defaults: DEST = datasets/photos,
# CACHE = .cache/photos of the checkout. Any mismatch, missing package or missing file stops the script with one line
# naming it, exit 1. --if-missing does nothing when DEST/COMPLETE exists and every PNG still matches (make run).
# --record rewrites the two .sha256 files from what is there instead of checking them (after reviewing a new
# package version by hand).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
dest="$here/photos"
cache="$repo/.cache/photos"
record=0
if_missing=0
while [ $# -gt 0 ]; do
    case "$1" in
        --dest) dest=${2:?--dest needs a folder}; shift 2 ;;
        --cache) cache=${2:?--cache needs a folder}; shift 2 ;;
        --record) record=1; shift ;;
        --if-missing) if_missing=1; shift ;;
        -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "fetch-photos: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done
manifest="$here/photos/manifest.tsv"
sources_sums="$here/photos/sources.sha256"
photos_sums="$here/photos/photos.sha256"
pins="numpy==2.4.6 Pillow==13.0.0"
die() { echo "fetch-photos: $*" >&2; exit 1; }
command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null || die "apt-get and dpkg-deb are needed (a Debian machine)"
mkdir -p "$dest" "$cache/debs" "$cache/unpacked"
dest=$(cd "$dest" && pwd); cache=$(cd "$cache" && pwd)
if [ "$if_missing" -eq 1 ] && [ "$record" -eq 0 ] && [ -f "$dest/COMPLETE" ] \
        && (cd "$dest" && sha256sum --quiet -c "$photos_sums" >/dev/null 2>&1); then
    echo "fetch-photos: the photo corpus is in $dest ($(ls "$dest"/train/*.png | wc -l) train, $(ls "$dest"/test/*.png | wc -l) test photos, every SHA-256 checked)"
    exit 0
fi

# Kept rows: name, package, version, path (columns 1-4; decision is column 10).
kept=$(awk -F'\t' '!/^#/ && $1 != "name" && $10 == "keep" { print $1 "\t" $2 "\t" $3 "\t" $4 }' "$manifest")
[ -n "$kept" ] || die "$manifest: no kept rows"

declare -A version_of
while IFS=$'\t' read -r pkg pinned; do
    debdir="$cache/debs/$pkg"
    deb=$(ls "$debdir"/*.deb 2>/dev/null | head -n 1 || true)
    if [ -z "$deb" ] || [ "$(dpkg-deb -f "$deb" Version)" != "$pinned" ]; then
        rm -rf "$debdir"; mkdir -p "$debdir"
        if ! (cd "$debdir" && apt-get download "$pkg=$pinned" >"$debdir/apt.log" 2>&1); then
            have=$(apt-cache policy "$pkg" 2>/dev/null | awk '/Candidate:/ { print $2 }')
            if [ -z "$have" ] || [ "$have" = "(none)" ]; then
                die "package $pkg: not available from apt on this machine (the manifest pins $pinned; run apt-get update first)"
            fi
            echo "fetch-photos: package $pkg: pinned version $pinned not available, checking version $have instead"
            (cd "$debdir" && apt-get download "$pkg=$have" >"$debdir/apt.log" 2>&1) || die "package $pkg=$have: apt-get download failed (see $debdir/apt.log)"
        fi
        deb=$(ls "$debdir"/*.deb | head -n 1)
    fi
    version_of[$pkg]=$(dpkg-deb -f "$deb" Version)
    rm -rf "$cache/unpacked/$pkg"
    dpkg-deb -x "$deb" "$cache/unpacked/$pkg"
done < <(cut -f2,3 <<<"$kept" | sort -u)

# Every kept file: present, and its SHA-256 the pinned one.
declare -A pinned_sum
if [ "$record" -eq 0 ]; then
    while read -r sum file; do pinned_sum[$file]=$sum; done <"$sources_sums"
fi
: >"$cache/sources.sha256.new"
while IFS=$'\t' read -r name pkg pinned path; do
    file="$pkg/$path"
    [ -f "$cache/unpacked/$file" ] || die "$file: not in package $pkg ${version_of[$pkg]} (the manifest pins $pinned)"
    sum=$(sha256sum "$cache/unpacked/$file" | cut -d' ' -f1)
    echo "$sum  $file" >>"$cache/sources.sha256.new"
    if [ "$record" -eq 0 ]; then
        want=${pinned_sum[$file]:-}
        [ -n "$want" ] || die "$file: no SHA-256 pinned in $sources_sums"
        [ "$sum" = "$want" ] || die "$file: SHA-256 $sum differs from the pinned $want (package $pkg ${version_of[$pkg]}, pinned $pinned)"
    fi
done <<<"$kept"

# numpy + Pillow for the conversion only, pinned, in a venv of the cache.
venv="$cache/venv"
have=$("$venv/bin/python" -c "import numpy, PIL; print('numpy==' + numpy.__version__, 'Pillow==' + PIL.__version__)" 2>/dev/null || true)
if [ "$have" != "$pins" ]; then
    python3 -m venv "$venv" || die "python3 -m venv failed (apt-get install python3-venv)"
    "$venv/bin/pip" install -q $pins >"$cache/pip.log" 2>&1 || die "pip install $pins failed (see $cache/pip.log)"
fi

rm -rf "$dest/train" "$dest/test" "$dest/COMPLETE"
(cd "$here" && sha256sum --quiet -c samples/SHA256SUMS) || die "datasets/samples: checksum mismatch (datasets/samples/SHA256SUMS)"
PYTHONPATH="$here/photos" "$venv/bin/python" "$here/photos/prepare.py" "$manifest" "$cache/unpacked" "$here/samples" "$dest"

if [ "$record" -eq 1 ]; then
    cp "$cache/sources.sha256.new" "$sources_sums"
    (cd "$dest" && sha256sum train/*.png test/*.png) >"$photos_sums"
    echo "fetch-photos: recorded $sources_sums and $photos_sums"
else
    bad=$(cd "$dest" && sha256sum -c "$photos_sums" 2>/dev/null | grep -v ': OK$' | head -n 1 || true)
    [ -z "$bad" ] || die "$dest/$bad: the written PNG differs from datasets/photos/photos.sha256 (another decoder or resizer than $pins?)"
    echo "fetch-photos: every source and PNG matches its pinned SHA-256"
fi
echo "$(ls "$dest"/train/*.png | wc -l) train and $(ls "$dest"/test/*.png | wc -l) test photos, checked against $photos_sums" >"$dest/COMPLETE"
echo "fetch-photos: the photo corpus is in $dest"
