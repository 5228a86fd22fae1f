#!/usr/bin/env bash
# Synthesises the demo corpus: four espeak-ng voices reading the same five sentences,
# saved VCTK-style as corpus/p<speaker>/p<speaker>_<utterance>.wav, 16 kHz mono 16-bit.
# The speaker numbers are VCTK's first four (225-228), so --gc_cardinality becomes 229.
# Also a held-out clip, heldout/p225_006.wav: a sixth sentence by the first voice, in no
# training folder, for judging the vocoder's copy synthesis on speech it never heard.
# Needs espeak-ng and sox. Run from anywhere; rewrites demo/corpus and demo/heldout.
set -euo pipefail
cd "$(dirname "$0")"

voices=(en+m3 en+f2 en-us+m1 en+f4)
speakers=(225 226 227 228)
sentences=(
    "Please call Stella."
    "Ask her to bring these things with her from the store."
    "Six spoons of fresh snow peas, five thick slabs of blue cheese."
    "We also need a small plastic snake and a big toy frog for the kids."
    "She can scoop these things into three red bags."
)

rm -rf corpus
for i in "${!voices[@]}"; do
    speaker=${speakers[$i]}
    mkdir -p "corpus/p$speaker"
    for j in "${!sentences[@]}"; do
        out=$(printf 'corpus/p%s/p%s_%03d.wav' "$speaker" "$speaker" $((j + 1)))
        # espeak-ng writes 22.05 kHz; sox resamples and normalises to -1 dBFS peak.
        espeak-ng -v "${voices[$i]}" -s 150 --stdout "${sentences[$j]}" \
            | sox -t wav - -r 16000 -c 1 -b 16 "$out" gain -n -1
    done
done
rm -rf heldout
mkdir -p heldout
espeak-ng -v "${voices[0]}" -s 150 --stdout \
    "When the sunlight strikes raindrops in the air, they act as a prism and form a rainbow." \
    | sox -t wav - -r 16000 -c 1 -b 16 heldout/p225_006.wav gain -n -1
du -sh corpus heldout
