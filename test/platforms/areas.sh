# SPDX-License-Identifier: MIT
# The test areas of the platform runs (matrix.sh, arm64.sh), sourced by both:
# area_regex AREA prints the area's CTest name regex (names as test/*.cmake
# defines them), or returns 1 for an unknown area.  Stress, soak, the model
# check and the fuzzers are no area: the platform runs never run them.
area_regex() {
  case $1 in
    core) echo '^(core|kinds|misuse|forkways|onethread|order|static|preload)\.' ;;
    auto|libc|sem|dropin|omp|churn|compose|glib|absl|local_scope|watch) echo "^$1\\." ;;
    interp) echo '^(optional|python|ruby|install)\.' ;;
    *) return 1 ;;
  esac
}
