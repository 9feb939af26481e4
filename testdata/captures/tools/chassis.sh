#!/bin/sh
# chassis control program for ipmi_sim: $1 = state dir, then get|set ITEM [VALUE]
d=$1; op=$2; item=$3; val=$4
case "$op $item" in
"get power") printf 'power:%s\n' "$(cat "$d/power" 2>/dev/null || echo 0)";;
"get boot") printf 'boot:%s\n' "$(cat "$d/boot" 2>/dev/null || echo default)";;
"set power") echo "$val" > "$d/power";;
"set reset") ;;
"set shutdown") echo 0 > "$d/power";;
"set boot") echo "$val" > "$d/boot";;
*) exit 1;;
esac
