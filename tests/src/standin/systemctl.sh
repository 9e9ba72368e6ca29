#!/bin/sh
# systemctl stand-in (no systemd in the sandbox). A unit's state file in
# $dir says how it behaves; no file is an active unit:
#   active, inactive          restart makes it active
#   failed                    restart succeeds, but it is failed at once
#   missing                   restart fails: no such unit (exit 5)
#   start-limit-hit           restart fails (exit 1) until reset-failed
#   dies-after N              active for N s after a restart, then failed
#                             (Restart=no)
#   crashloop N               crashes every N s and is restarted by
#                             "systemd" (Restart=on-failure): active, but
#                             NRestarts grows by one every N s
# Every call is logged to $unit.calls; a restart to $unit.log (one line
# each); journalctl prints $unit.journal.
dir=/var/tmp/.instance-standin/units
verb=$1 opt=$2 prop=$3 flag=$4
# show -p PROPERTY [--value] UNIT
if [ "$verb" = show ]; then
  [ "$flag" = --value ] && unit=$5 || unit=$4
else
  unit=$2
fi
[ -n "$unit" ] || { echo "systemctl stand-in: no unit" >&2; exit 2; }
echo "$*" >> "$dir/$unit.calls"
state=$(cat "$dir/$unit" 2>/dev/null || echo active)
# Milliseconds: a unit that dies 2 s after its restart dies at 2.0 s.
now=$(date +%s%3N)
started=$(cat "$dir/$unit.started" 2>/dev/null || echo "$now")
elapsed=$((now - started))
set -- $state
mode=$1 every=$(( ${2:-1} * 1000 ))
current() {
  case "$mode" in
    active|crashloop) echo active ;;
    dies-after) [ "$elapsed" -lt "$every" ] && echo active || echo failed ;;
    start-limit-hit) echo failed ;;
    *) echo "$mode" ;;
  esac
}
case "$verb" in
  restart)
    case "$mode" in
      missing) echo "Failed to restart $unit: Unit $unit not found." >&2; exit 5 ;;
      start-limit-hit) echo "Job for $unit failed. See \"systemctl status $unit\" and \"journalctl -xeu $unit\" for details." >&2; exit 1 ;;
      inactive) echo active > "$dir/$unit" ;;
    esac
    echo "$now" > "$dir/$unit.started"
    echo "$now restart" >> "$dir/$unit.log"; exit 0 ;;
  reset-failed)
    [ "$mode" = start-limit-hit ] && echo inactive > "$dir/$unit"; exit 0 ;;
  is-active) s=$(current); echo "$s"; [ "$s" = active ] ;;
  show)
    # NAME=value, or the value alone with --value
    [ "$opt" = -p ] || { echo "systemctl stand-in: show -p P [--value] U only" >&2; exit 2; }
    [ "$flag" = --value ] && key= || key="$prop="
    case "$prop" in
      Result) [ "$mode" = start-limit-hit ] && v=start-limit-hit || { [ "$(current)" = failed ] && v=exit-code || v=success; } ;;
      NRestarts) [ "$mode" = crashloop ] && v=$((elapsed / every)) || v=0 ;;
      *) echo "systemctl stand-in: property $prop not supported" >&2; exit 2 ;;
    esac
    echo "$key$v" ;;
  *) echo "systemctl stand-in: $verb not supported" >&2; exit 2 ;;
esac
