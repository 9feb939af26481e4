#!/bin/bash
# cap.sh NAME cmd... : capture UDP to/from the BMC port while running cmd
name=$1; shift
timeout 60 tcpdump -i any --immediate-mode -U -w $name.pcap udp port 53108 2>tcpdump.$name.err & tp=$!
sleep 1
"$@" > $name.out 2>&1; echo "rc=$?" >> $name.out
sleep 0.5; kill $tp; wait $tp
python3 extract.py $name.pcap 53108 $name.txt
