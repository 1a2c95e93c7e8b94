#!/usr/bin/env bash
# Regenerates the statement fonts in src/notify/fonts/: subsets of Debian's Noto Sans CJK
# (Korean face; SIL Open Font License 1.1) covering Latin, Greek, Cyrillic, punctuation,
# currency symbols, Hangul, kana and the 6,355 kanji of JIS X 0208, without vertical metrics
# or hinting (about 2.7 MB per weight instead of 19 MB). The engine embeds them, so statements
# render the same on every host. Needs `apt-get install fonts-noto-cjk` and `pip install fonttools`.
set -euo pipefail
cd "$(dirname "$0")/.."
unicodes=$(mktemp)
python3 - "$unicodes" <<'PY'
import sys
kanji = set()
for b1 in range(0x81, 0xF0):
    for b2 in range(0x40, 0xFD):
        try:
            c = bytes([b1, b2]).decode("shift_jis")
        except UnicodeDecodeError:
            continue
        if 0x4E00 <= ord(c) <= 0x9FFF:
            kanji.add(ord(c))
ranges = ["U+0020-024F", "U+02B0-02FF", "U+0300-036F", "U+0370-03FF", "U+0400-04FF", "U+2000-206F",
          "U+20A0-20CF", "U+2100-214F", "U+2190-21FF", "U+2200-22FF", "U+25A0-25FF", "U+3000-303F",
          "U+3040-30FF", "U+3130-318F", "U+1100-11FF", "U+AC00-D7A3", "U+FF00-FFEF"]
open(sys.argv[1], "w").write(",".join(ranges + ["U+%04X" % c for c in sorted(kanji)]))
PY
for weight in Regular Bold; do
    pyftsubset "/usr/share/fonts/opentype/noto/NotoSansCJK-$weight.ttc" --font-number=1 \
        --unicodes-file="$unicodes" --layout-features=kern --no-hinting \
        --name-IDs=1,2,3,4,5,6,13,14 --drop-tables+=vhea,vmtx,VORG \
        --output-file="src/notify/fonts/NotoSansCJKkr-Subset-$weight.otf"
done
# The Latin part alone, used for statements with no other script (much cheaper to subset).
for weight in Regular Bold; do
    pyftsubset "/usr/share/fonts/opentype/noto/NotoSansCJK-$weight.ttc" --font-number=1 \
        --unicodes="U+0020-024F,U+02B0-02FF,U+0300-036F,U+2000-206F,U+20A0-20CF,U+2100-214F,U+2190-21FF,U+2200-22FF,U+25A0-25FF" \
        --layout-features=kern --no-hinting \
        --name-IDs=1,2,3,4,5,6,13,14 --drop-tables+=vhea,vmtx,VORG \
        --output-file="src/notify/fonts/NotoSansCJKkr-Latin-$weight.otf"
done
rm -f "$unicodes"
