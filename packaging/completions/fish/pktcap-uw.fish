complete -c pktcap-uw -l vmk -d 'Capture at this vmknic (vmkN or port group)' -r
complete -c pktcap-uw -l dir -d 'Direction: 0 received (default), 1 sent, 2 both' -r
complete -c pktcap-uw -l capture -d 'Capture point instead of a vmknic\'s receive/transmit: Drop, Forward or Endpoint' -r
complete -c pktcap-uw -s o -l outfile -d 'Write pcapng to FILE (`-` for standard output)' -r
complete -c pktcap-uw -s c -l count -d 'Stop after COUNT packets' -r
complete -c pktcap-uw -l srcip -d 'IPv4 source address' -r
complete -c pktcap-uw -l dstip -d 'IPv4 destination address' -r
complete -c pktcap-uw -l ip -d 'IPv4 address, either way' -r
complete -c pktcap-uw -l proto -d 'IP protocol, hexadecimal as on ESX (0x06) or decimal' -r
complete -c pktcap-uw -l tcpport -d 'TCP port, either way' -r
complete -c pktcap-uw -l udpport -d 'UDP port, either way' -r
complete -c pktcap-uw -s h -l help -d 'Print help'
