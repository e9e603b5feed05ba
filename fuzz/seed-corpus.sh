#!/usr/bin/env bash
# Fills fuzz/corpus/<target>/ with seed inputs: the committed seeds in
# fuzz/seeds/<target>/ (including past crashes, kept as regression inputs)
# plus inputs derived from the golden messages and the spec files.
#
#   parse_message, round_trip  selector byte + raw message of fixtures/golden/<spec>/*.hex
#   tlv                        raw DE55 of every golden message that has one (from *.json)
#   pds                        DE48/62/123-125 of the golden IPM records (from *.json)
#   spec_load                  specs/*.toml and fixtures/specs-bad/*.toml
#
# The selector byte of a spec is its index in the shipped-spec table of
# src/message/spec_file/mod.rs (fuzz/src/lib.rs picks specs()[byte % count]);
# the order is read from that file so the two cannot drift apart.
#
# Needs bash and perl (with the core module JSON::PP). Safe to run again:
# files are overwritten, libFuzzer's own additions are kept.
set -euo pipefail

fuzz_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$fuzz_dir")
corpus=$fuzz_dir/corpus
golden=$root/fixtures/golden
targets=(parse_message round_trip tlv pds spec_load framing)

for t in "${targets[@]}"; do
    mkdir -p "$corpus/$t"
done
# Committed seeds of every target, including targets not derived from fixtures.
for dir in "$fuzz_dir"/seeds/*/; do
    [[ -d $dir ]] || continue
    t=$(basename "$dir")
    mkdir -p "$corpus/$t"
    find "$dir" -maxdepth 1 -type f -exec cp -f {} "$corpus/$t/" \;
done

# Shipped specs in table order: index = selector byte.
mapfile -t specs < <(grep -o 'include_str!("[./]*specs/[A-Za-z0-9_-]*\.toml")' \
    "$root/src/message/spec_file/mod.rs" | sed -E 's|.*specs/([^.]*)\.toml.*|\1|')
if [[ ${#specs[@]} -eq 0 ]]; then
    echo "seed-corpus: no shipped specs found in src/message/spec_file/mod.rs" >&2
    exit 1
fi

# hex_to_raw SELECTOR IN OUT: decodes the hex text of IN (whitespace ignored)
# and writes it to OUT, after the selector byte unless SELECTOR is "-".
hex_to_raw() {
    perl -e '
        my ($sel, $in, $out) = @ARGV;
        open(my $fh, "<", $in) or die "$in: $!";
        local $/; my $hex = <$fh>; $hex =~ s/\s+//g;
        die "$in: not hex\n" if $hex =~ /[^0-9A-Fa-f]/ || length($hex) % 2;
        open(my $o, ">:raw", $out) or die "$out: $!";
        print $o chr($sel) if $sel ne "-";
        print $o pack("H*", $hex);
    ' "$@"
}

count=0
for i in "${!specs[@]}"; do
    spec=${specs[$i]}
    [[ -d $golden/$spec ]] || continue
    for hex in "$golden/$spec"/*.hex; do
        [[ -e $hex ]] || continue
        name=$spec-$(basename "$hex" .hex)
        hex_to_raw "$i" "$hex" "$corpus/parse_message/golden-$name"
        cp -f "$corpus/parse_message/golden-$name" "$corpus/round_trip/golden-$name"
        count=$((count + 1))
    done
done

# Structured field values from the golden JSON: DE55 as hex -> raw bytes for
# tlv, PDS fields as text for pds.
for json in "$golden"/*/*.json; do
    [[ -e $json ]] || continue
    name=$(basename "$(dirname "$json")")-$(basename "$json" .json)
    perl -MJSON::PP -e '
        my ($json, $tlv_out, $pds_out) = @ARGV;
        open(my $fh, "<", $json) or die "$json: $!";
        local $/; my $doc = JSON::PP->new->decode(<$fh>);
        my $f = $doc->{fields} // {};
        if (defined(my $v = $f->{"55"})) {
            open(my $o, ">:raw", $tlv_out) or die "$tlv_out: $!";
            print $o pack("H*", $v);
        }
        for my $n (qw(48 62 123 124 125)) {
            next unless defined(my $v = $f->{$n});
            next unless $v =~ /^\d{7}/;    # PDS text starts with tag + length
            open(my $o, ">:raw", "$pds_out-de$n") or die "$pds_out-de$n: $!";
            print $o $v;
        }
    ' "$json" "$corpus/tlv/golden-$name-de55" "$corpus/pds/golden-$name"
done

for toml in "$root"/specs/*.toml "$root"/fixtures/specs-bad/*.toml; do
    [[ -e $toml ]] || continue
    cp -f "$toml" "$corpus/spec_load/$(basename "$(dirname "$toml")")-$(basename "$toml")"
done

for t in $(cd "$corpus" && ls -d -- */ | tr -d /); do
    printf 'seed-corpus: %-14s %4d inputs\n' "$t" "$(find "$corpus/$t" -maxdepth 1 -type f | wc -l)"
done
echo "seed-corpus: specs by selector byte: $(for i in "${!specs[@]}"; do printf '%d=%s ' "$i" "${specs[$i]}"; done)(${count} golden messages)"
