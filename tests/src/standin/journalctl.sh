#!/bin/sh
# journalctl stand-in: `journalctl -u UNIT -n N --no-pager ...` prints the
# last N lines of the unit's journal file, which a test writes.
dir=/var/tmp/.instance-standin/units
unit= n=10
while [ $# -gt 0 ]; do
  case "$1" in
    -u) unit=$2; shift ;;
    -n) n=$2; shift ;;
  esac
  shift
done
[ -n "$unit" ] || { echo "journalctl stand-in: -u UNIT only" >&2; exit 2; }
tail -n "$n" "$dir/$unit.journal" 2>/dev/null
exit 0
