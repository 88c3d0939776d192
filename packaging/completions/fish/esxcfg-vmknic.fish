complete -c esxcfg-vmknic -s i -l ip -d 'IPv4 address, IPv6 address/prefix length, or DHCP' -r
complete -c esxcfg-vmknic -s 6 -l enable-ipv6 -d 'Enable IPv6 (true or false; with -a and an IPv6 address)' -r
complete -c esxcfg-vmknic -s P -l enable-ipv6-autoconf -d 'IPv6 router advertisement autoconfiguration (true or false): addresses and a default router from Router Advertisements' -r
complete -c esxcfg-vmknic -s n -l netmask -d 'Netmask, dotted or as a length' -r
complete -c esxcfg-vmknic -s m -l mtu -d 'MTU (68-9000)' -r
complete -c esxcfg-vmknic -s M -l mac -d 'MAC address (with -a)' -r
complete -c esxcfg-vmknic -s p -l portgroup -d 'Port group name, instead of the argument' -r
complete -c esxcfg-vmknic -s N -l netstack -d 'The netstack (with -a: the one the vmknic joins; with -l: only its vmknics)' -r
complete -c esxcfg-vmknic -s l -l list -d 'List the vmknics'
complete -c esxcfg-vmknic -s a -l add -d 'Add a vmknic on a port group'
complete -c esxcfg-vmknic -s d -l del -d 'Delete the vmknic on a port group'
complete -c esxcfg-vmknic -s e -l enable-vmknic -d 'Enable the vmknic on a port group'
complete -c esxcfg-vmknic -s D -l disable-vmknic -d 'Disable the vmknic on a port group'
complete -c esxcfg-vmknic -s h -l help -d 'Print help'
complete -c esxcfg-vmknic -s V -l version -d 'Print version'
