complete -c vmkping -s I -d 'Send from this vmknic, bypassing the routing lookup' -r
complete -c vmkping -s N -d 'Send through this gateway, bypassing the routing table; it must be on a vmknic subnet (IPv6 with -6: on a vmknic prefix, or link-local with -I)' -r
complete -c vmkping -s S -d 'The netstack to send from (ESXi\'s `-S`; default: defaultTcpipStack)' -r
complete -c vmkping -s c -d 'Number of echo requests' -r
complete -c vmkping -s s -d 'ICMP payload bytes (0-65507)' -r
complete -c vmkping -s i -d 'Seconds between requests (decimals allowed)' -r
complete -c vmkping -s W -d 'Seconds to wait for each reply' -r
complete -c vmkping -s t -d 'IP time to live' -r
complete -c vmkping -s 4 -d 'IPv4 (the default)'
complete -c vmkping -s 6 -d 'IPv6: the host is an IPv6 address (-t is the hop limit)'
complete -c vmkping -s d -d 'Set don\'t-fragment (refused when larger than the egress MTU)'
complete -c vmkping -s h -l help -d 'Print help'
