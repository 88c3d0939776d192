complete -c esxcfg-route -s f -l family -d 'The address family: V4 (the default) or V6' -r
complete -c esxcfg-route -s N -l netstack -d 'The netstack to act on (default: defaultTcpipStack)' -r
complete -c esxcfg-route -s a -l add -d 'Add a route (or the default gateway)'
complete -c esxcfg-route -s d -l del -d 'Delete a route (or the default gateway)'
complete -c esxcfg-route -s l -l list -d 'List the routing table'
complete -c esxcfg-route -s n -l neighbor-list -d 'List the neighbour (ARP) table'
complete -c esxcfg-route -s h -l help -d 'Print help'
complete -c esxcfg-route -s V -l version -d 'Print version'
