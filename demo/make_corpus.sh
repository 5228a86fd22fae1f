#!/usr/bin/env bash
# Synthesises the demo corpus: four espeak-ng voices reading the same twenty sentences,
# saved VCTK-style as corpus/p<speaker>/p<speaker>_<utterance>.wav, 16 kHz mono 16-bit.
# The speaker numbers are VCTK's first four (225-228), so --gc_cardinality becomes 229.
# Also a held-out set, heldout/p<speaker>_006..008.wav (below).
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
    # Harvard sentences (lists 2 and 3, none of the held-out set's): a vocoder trained on
    # five sentences learns them by heart within minutes; these give it more to learn from.
    "A rod is used to catch pink salmon."
    "The source of the huge river is the clear spring."
    "Kick the ball straight and follow through."
    "Help the woman get back to her feet."
    "A pot of tea helps to pass the evening."
    "Smoky fires lack flame and heat."
    "The soft cushion broke the man's fall."
    "The salt breeze came across from the sea."
    "The girl at the booth sold fifty bonds."
    "The small pup gnawed a hole in the sock."
    "The fish twisted and turned on the bent hook."
    "Press the pants and sew a button on the vest."
    "The swan dive was far short of perfect."
    "The beauty of the view stunned the young boy."
    "Two blue fish swam in the tank."
)

rm -rf corpus
for i in "${!voices[@]}"; do
    speaker=${speakers[$i]}
    mkdir -p "corpus/p$speaker"
    for j in "${!sentences[@]}"; do
        # Utterances 006-008 are the held-out set's numbers, so the rest go on from 009.
        number=$((j < 5 ? j + 1 : j + 4))
        out=$(printf 'corpus/p%s/p%s_%03d.wav' "$speaker" "$speaker" $number)
        # espeak-ng writes 22.05 kHz; sox resamples and normalises to -1 dBFS peak.
        espeak-ng -v "${voices[$i]}" -s 150 --stdout "${sentences[$j]}" \
            | sox -t wav - -r 16000 -c 1 -b 16 "$out" gain -n -1
    done
done
# The held-out set: three more sentences by each voice (Harvard sentences, the first one
# the rainbow passage's), in no training folder, for judging a vocoder on speech it never
# heard (bench/vocoder_quality.py, and train.py --validation_dir=demo/heldout).
heldout=(
    "When the sunlight strikes raindrops in the air, they act as a prism and form a rainbow."
    "The birch canoe slid on the smooth planks."
    "Glue the sheet to the dark blue background."
    "It is easy to tell the depth of a well."
    "These days a chicken leg is a rare dish."
    "Rice is often served in round bowls."
    "The juice of lemons makes fine punch."
    "The box was thrown beside the parked truck."
    "The hogs were fed chopped corn and garbage."
    "Four hours of steady work faced us."
    "A large size in stockings is hard to sell."
    "The boy was there when the sun rose."
)
rm -rf heldout
mkdir -p heldout
for i in "${!voices[@]}"; do
    speaker=${speakers[$i]}
    for j in 0 1 2; do
        out=$(printf 'heldout/p%s_%03d.wav' "$speaker" $((j + 6)))
        espeak-ng -v "${voices[$i]}" -s 150 --stdout "${heldout[$((3 * i + j))]}" \
            | sox -t wav - -r 16000 -c 1 -b 16 "$out" gain -n -1
    done
done
du -sh corpus heldout
