# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_vmkstack_global_optspecs
    string join \n control= h/help V/version
end

function __fish_vmkstack_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_vmkstack_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_vmkstack_using_subcommand
    set -l cmd (__fish_vmkstack_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c vmkstack -n "__fish_vmkstack_needs_command" -l control -d 'Control socket of the daemon [env: VMKSTACK_CONTROL] [default: /run/vmkstack/vmkstack.sock]' -r -F
complete -c vmkstack -n "__fish_vmkstack_needs_command" -s h -l help -d 'Print help'
complete -c vmkstack -n "__fish_vmkstack_needs_command" -s V -l version -d 'Print version'
complete -c vmkstack -n "__fish_vmkstack_needs_command" -f -a "check" -d 'Validate a configuration and show the vmknic and route listings as ESX would'
complete -c vmkstack -n "__fish_vmkstack_needs_command" -f -a "demo" -d 'Replay the ESX article on the built-in storage lab (root; about a minute; leaves nothing behind)'
complete -c vmkstack -n "__fish_vmkstack_needs_command" -f -a "daemon" -d 'Run the netstack in the foreground: create the vmknics\' TAP devices, answer on their addresses, and forward between them when `forwarding = true`'
complete -c vmkstack -n "__fish_vmkstack_needs_command" -f -a "vmknic" -d 'List, add, remove and change VMkernel interfaces on the running daemon'
complete -c vmkstack -n "__fish_vmkstack_needs_command" -f -a "route" -d 'List, add, remove and explain routes (and the default gateway) on the running daemon'
complete -c vmkstack -n "__fish_vmkstack_needs_command" -f -a "neighbor" -d 'List and forget entries of the running daemon\'s neighbour (ARP) table'
complete -c vmkstack -n "__fish_vmkstack_needs_command" -f -a "stats" -d 'Per-vmknic packet, byte, forwarding and drop counters of the running daemon; with --interval, also their rates over each interval'
complete -c vmkstack -n "__fish_vmkstack_needs_command" -f -a "top" -d 'A live view of each vmknic\'s rates (esxtop\'s network view): PKTTX/s, MbTX/s, PKTRX/s, MbRX/s, %DRPTX, %DRPRX, FWD/s. Keys t T r R N sort, q quits; -b prints CSV'
complete -c vmkstack -n "__fish_vmkstack_needs_command" -f -a "probe" -d 'Check an iSCSI or NFS server from the stack itself (`probe iscsi HOST[:PORT]`, `probe nfs HOST`), with a diagnosis for each failure point'
complete -c vmkstack -n "__fish_vmkstack_needs_command" -f -a "netstack" -d 'List, show, add and remove netstacks (ESXi\'s `esxcli network ip netstack`)'
complete -c vmkstack -n "__fish_vmkstack_needs_command" -f -a "reload" -d 'Apply the configuration file on disk to the running daemon, as SIGHUP does: the difference (vmknics, routes, gateway, forwarding, forwards) goes live without touching unchanged vmknics, or the file is refused with every problem named and nothing changes'
complete -c vmkstack -n "__fish_vmkstack_needs_command" -f -a "forward" -d 'Forward a kernel TCP port through the stack: `forward [-I vmkN] LISTEN REMOTE`, `forward list`, `forward remove LISTEN`'
complete -c vmkstack -n "__fish_vmkstack_needs_command" -f -a "capture" -d 'The same as pktcap-uw'
complete -c vmkstack -n "__fish_vmkstack_needs_command" -f -a "generate" -d 'Write shell completions or man pages generated from these definitions (packaging)'
complete -c vmkstack -n "__fish_vmkstack_needs_command" -f -a "esxcfg-route" -d 'esxcfg-route: show or set the default gateway, add or delete routes, list routes (-l) and neighbours (-n)'
complete -c vmkstack -n "__fish_vmkstack_needs_command" -f -a "esxcfg-vmknic" -d 'esxcfg-vmknic: list (-l), add (-a, -i DHCP), delete (-d), enable (-e), disable (-D) vmknics and change their MTU (-m) or address (-i/-n, -i DHCP)'
complete -c vmkstack -n "__fish_vmkstack_needs_command" -f -a "vmkping" -d 'vmkping: ICMP echo from the VMkernel stack ([-I vmkN] [-N next_hop] [-c count] [-s size] [-d] [-i interval] [-W timeout] [-t ttl] host)'
complete -c vmkstack -n "__fish_vmkstack_needs_command" -f -a "esxcli" -d 'esxcli [--formatter csv|keyvalue|json] network {ip route ipv4 list|add|remove, ip interface list|add|remove|set|ipv4 get|set, ip neighbor list|remove, diag ping}'
complete -c vmkstack -n "__fish_vmkstack_needs_command" -f -a "nc" -d 'nc -z [-nv] [-w secs] [-s source_ip | -I vmkN] host port: check a TCP port from the VMkernel stack (the exit status answers; -v reports as netcat does)'
complete -c vmkstack -n "__fish_vmkstack_needs_command" -f -a "pktcap-uw" -d 'pktcap-uw: capture packets inside the stack to pcapng ([--vmk vmkN] [--dir 0|1|2] [--capture Drop|Forward|Endpoint] [-o FILE|-] [-c COUNT] [filters])'
complete -c vmkstack -n "__fish_vmkstack_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand check" -s c -l config -d 'Configuration file (TOML)' -r -F
complete -c vmkstack -n "__fish_vmkstack_using_subcommand check" -l lookup -d 'Explain which route, vmknic, gateway and source address traffic to ADDR (IPv4 or IPv6) would use' -r
complete -c vmkstack -n "__fish_vmkstack_using_subcommand check" -l control -d 'Not used by `check`: present (hidden) so that the global `--control` of the client commands stays out of `check --help`' -r -F
complete -c vmkstack -n "__fish_vmkstack_using_subcommand check" -l json -d 'Print JSON instead of text'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand check" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand check" -s V -l version -d 'Print version'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand demo" -l control -d 'Control socket of the daemon [env: VMKSTACK_CONTROL] [default: /run/vmkstack/vmkstack.sock]' -r -F
complete -c vmkstack -n "__fish_vmkstack_using_subcommand demo" -s h -l help -d 'Print help'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand demo" -s V -l version -d 'Print version'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand daemon" -s c -l config -d 'Configuration file (TOML)' -r -F
complete -c vmkstack -n "__fish_vmkstack_using_subcommand daemon" -l control -d 'Control socket path' -r -F
complete -c vmkstack -n "__fish_vmkstack_using_subcommand daemon" -l log -d 'Log level or filter (as RUST_LOG: error, warn, info, debug, trace)' -r
complete -c vmkstack -n "__fish_vmkstack_using_subcommand daemon" -l check-config -d 'Only validate the configuration (and the capabilities it needs), print the result and exit: 0 when the daemon would start with it, 1 with the problems named'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand daemon" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand daemon" -s V -l version -d 'Print version'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand vmknic; and not __fish_seen_subcommand_from list add remove set help" -s N -l netstack -d 'The netstack to act on (ESXi\'s `-N`; default: defaultTcpipStack)' -r
complete -c vmkstack -n "__fish_vmkstack_using_subcommand vmknic; and not __fish_seen_subcommand_from list add remove set help" -l control -d 'Control socket of the daemon [env: VMKSTACK_CONTROL] [default: /run/vmkstack/vmkstack.sock]' -r -F
complete -c vmkstack -n "__fish_vmkstack_using_subcommand vmknic; and not __fish_seen_subcommand_from list add remove set help" -s h -l help -d 'Print help'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand vmknic; and not __fish_seen_subcommand_from list add remove set help" -s V -l version -d 'Print version'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand vmknic; and not __fish_seen_subcommand_from list add remove set help" -f -a "list" -d 'List the vmknics as `esxcfg-vmknic -l` does (a row per address)'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand vmknic; and not __fish_seen_subcommand_from list add remove set help" -f -a "add" -d 'Add a vmknic; without --name the daemon picks the lowest free vmkN'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand vmknic; and not __fish_seen_subcommand_from list add remove set help" -f -a "remove" -d 'Remove a vmknic (by vmkN or port group)'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand vmknic; and not __fish_seen_subcommand_from list add remove set help" -f -a "set" -d 'Change a vmknic\'s MTU, address or state'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand vmknic; and not __fish_seen_subcommand_from list add remove set help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand vmknic; and __fish_seen_subcommand_from list" -s N -l netstack -d 'The netstack to act on (ESXi\'s `-N`; default: defaultTcpipStack)' -r
complete -c vmkstack -n "__fish_vmkstack_using_subcommand vmknic; and __fish_seen_subcommand_from list" -l control -d 'Control socket of the daemon [env: VMKSTACK_CONTROL] [default: /run/vmkstack/vmkstack.sock]' -r -F
complete -c vmkstack -n "__fish_vmkstack_using_subcommand vmknic; and __fish_seen_subcommand_from list" -l json -d 'Print the daemon\'s answer as JSON instead of a table'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand vmknic; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand vmknic; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand vmknic; and __fish_seen_subcommand_from add" -l portgroup -d 'Port group the vmknic joins' -r
complete -c vmkstack -n "__fish_vmkstack_using_subcommand vmknic; and __fish_seen_subcommand_from add" -l ip -d 'Address with prefix length, e.g. 198.18.1.100/24' -r
complete -c vmkstack -n "__fish_vmkstack_using_subcommand vmknic; and __fish_seen_subcommand_from add" -l name -d 'Name (vmkN); default: the lowest free one' -r
complete -c vmkstack -n "__fish_vmkstack_using_subcommand vmknic; and __fish_seen_subcommand_from add" -l mtu -d 'MTU (68-9000; default 1500)' -r
complete -c vmkstack -n "__fish_vmkstack_using_subcommand vmknic; and __fish_seen_subcommand_from add" -l mac -d 'MAC address (default: derived from the name)' -r
complete -c vmkstack -n "__fish_vmkstack_using_subcommand vmknic; and __fish_seen_subcommand_from add" -l netns -d 'Network namespace to move the TAP\'s kernel side into' -r
complete -c vmkstack -n "__fish_vmkstack_using_subcommand vmknic; and __fish_seen_subcommand_from add" -l bridge -d 'Linux bridge for the TAP\'s kernel side to join' -r
complete -c vmkstack -n "__fish_vmkstack_using_subcommand vmknic; and __fish_seen_subcommand_from add" -l tap -d 'TAP device name (default: the vmknic name)' -r
complete -c vmkstack -n "__fish_vmkstack_using_subcommand vmknic; and __fish_seen_subcommand_from add" -s N -l netstack -d 'The netstack to act on (ESXi\'s `-N`; default: defaultTcpipStack)' -r
complete -c vmkstack -n "__fish_vmkstack_using_subcommand vmknic; and __fish_seen_subcommand_from add" -l control -d 'Control socket of the daemon [env: VMKSTACK_CONTROL] [default: /run/vmkstack/vmkstack.sock]' -r -F
complete -c vmkstack -n "__fish_vmkstack_using_subcommand vmknic; and __fish_seen_subcommand_from add" -l disabled -d 'Create it disabled'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand vmknic; and __fish_seen_subcommand_from add" -s h -l help -d 'Print help'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand vmknic; and __fish_seen_subcommand_from add" -s V -l version -d 'Print version'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand vmknic; and __fish_seen_subcommand_from remove" -s N -l netstack -d 'The netstack to act on (ESXi\'s `-N`; default: defaultTcpipStack)' -r
complete -c vmkstack -n "__fish_vmkstack_using_subcommand vmknic; and __fish_seen_subcommand_from remove" -l control -d 'Control socket of the daemon [env: VMKSTACK_CONTROL] [default: /run/vmkstack/vmkstack.sock]' -r -F
complete -c vmkstack -n "__fish_vmkstack_using_subcommand vmknic; and __fish_seen_subcommand_from remove" -s h -l help -d 'Print help'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand vmknic; and __fish_seen_subcommand_from remove" -s V -l version -d 'Print version'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand vmknic; and __fish_seen_subcommand_from set" -l mtu -d 'New MTU (68-9000)' -r
complete -c vmkstack -n "__fish_vmkstack_using_subcommand vmknic; and __fish_seen_subcommand_from set" -l ip -d 'New primary address with prefix length' -r
complete -c vmkstack -n "__fish_vmkstack_using_subcommand vmknic; and __fish_seen_subcommand_from set" -l gateway -d 'Its own default gateway (ESXi 6.5+ override), on its subnet: traffic from its address with no more specific route leaves through it' -r
complete -c vmkstack -n "__fish_vmkstack_using_subcommand vmknic; and __fish_seen_subcommand_from set" -s N -l netstack -d 'The netstack to act on (ESXi\'s `-N`; default: defaultTcpipStack)' -r
complete -c vmkstack -n "__fish_vmkstack_using_subcommand vmknic; and __fish_seen_subcommand_from set" -l control -d 'Control socket of the daemon [env: VMKSTACK_CONTROL] [default: /run/vmkstack/vmkstack.sock]' -r -F
complete -c vmkstack -n "__fish_vmkstack_using_subcommand vmknic; and __fish_seen_subcommand_from set" -l enable -d 'Enable it'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand vmknic; and __fish_seen_subcommand_from set" -l disable -d 'Disable it'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand vmknic; and __fish_seen_subcommand_from set" -l no-gateway -d 'Clear its own default gateway (the netstack\'s applies again)'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand vmknic; and __fish_seen_subcommand_from set" -s h -l help -d 'Print help'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand vmknic; and __fish_seen_subcommand_from set" -s V -l version -d 'Print version'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand vmknic; and __fish_seen_subcommand_from help" -f -a "list" -d 'List the vmknics as `esxcfg-vmknic -l` does (a row per address)'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand vmknic; and __fish_seen_subcommand_from help" -f -a "add" -d 'Add a vmknic; without --name the daemon picks the lowest free vmkN'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand vmknic; and __fish_seen_subcommand_from help" -f -a "remove" -d 'Remove a vmknic (by vmkN or port group)'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand vmknic; and __fish_seen_subcommand_from help" -f -a "set" -d 'Change a vmknic\'s MTU, address or state'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand vmknic; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand route; and not __fish_seen_subcommand_from list add remove get help" -s N -l netstack -d 'The netstack to act on (ESXi\'s `-N`; default: defaultTcpipStack)' -r
complete -c vmkstack -n "__fish_vmkstack_using_subcommand route; and not __fish_seen_subcommand_from list add remove get help" -l control -d 'Control socket of the daemon [env: VMKSTACK_CONTROL] [default: /run/vmkstack/vmkstack.sock]' -r -F
complete -c vmkstack -n "__fish_vmkstack_using_subcommand route; and not __fish_seen_subcommand_from list add remove get help" -s h -l help -d 'Print help'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand route; and not __fish_seen_subcommand_from list add remove get help" -s V -l version -d 'Print version'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand route; and not __fish_seen_subcommand_from list add remove get help" -f -a "list" -d 'List routes as `esxcfg-route -l` does: static, Local Subnet, default'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand route; and not __fish_seen_subcommand_from list add remove get help" -f -a "add" -d 'Add a static route, or set the default gateway with `default`'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand route; and not __fish_seen_subcommand_from list add remove get help" -f -a "remove" -d 'Remove a static route, or the default gateway with `default`'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand route; and not __fish_seen_subcommand_from list add remove get help" -f -a "get" -d 'Explain which route, vmknic, gateway and source traffic to ADDR uses, and which gateway wins (a vmknic\'s own default gateway, ESXi 6.5+, or the netstack\'s)'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand route; and not __fish_seen_subcommand_from list add remove get help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand route; and __fish_seen_subcommand_from list" -s N -l netstack -d 'The netstack to act on (ESXi\'s `-N`; default: defaultTcpipStack)' -r
complete -c vmkstack -n "__fish_vmkstack_using_subcommand route; and __fish_seen_subcommand_from list" -l control -d 'Control socket of the daemon [env: VMKSTACK_CONTROL] [default: /run/vmkstack/vmkstack.sock]' -r -F
complete -c vmkstack -n "__fish_vmkstack_using_subcommand route; and __fish_seen_subcommand_from list" -l json -d 'Print the daemon\'s answer as JSON instead of a table'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand route; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand route; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand route; and __fish_seen_subcommand_from add" -s N -l netstack -d 'The netstack to act on (ESXi\'s `-N`; default: defaultTcpipStack)' -r
complete -c vmkstack -n "__fish_vmkstack_using_subcommand route; and __fish_seen_subcommand_from add" -l control -d 'Control socket of the daemon [env: VMKSTACK_CONTROL] [default: /run/vmkstack/vmkstack.sock]' -r -F
complete -c vmkstack -n "__fish_vmkstack_using_subcommand route; and __fish_seen_subcommand_from add" -s h -l help -d 'Print help'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand route; and __fish_seen_subcommand_from add" -s V -l version -d 'Print version'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand route; and __fish_seen_subcommand_from remove" -s N -l netstack -d 'The netstack to act on (ESXi\'s `-N`; default: defaultTcpipStack)' -r
complete -c vmkstack -n "__fish_vmkstack_using_subcommand route; and __fish_seen_subcommand_from remove" -l control -d 'Control socket of the daemon [env: VMKSTACK_CONTROL] [default: /run/vmkstack/vmkstack.sock]' -r -F
complete -c vmkstack -n "__fish_vmkstack_using_subcommand route; and __fish_seen_subcommand_from remove" -s h -l help -d 'Print help'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand route; and __fish_seen_subcommand_from remove" -s V -l version -d 'Print version'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand route; and __fish_seen_subcommand_from get" -l source -d 'For traffic sent from this address (a vmknic\'s, of the destination\'s family)' -r
complete -c vmkstack -n "__fish_vmkstack_using_subcommand route; and __fish_seen_subcommand_from get" -s N -l netstack -d 'The netstack to act on (ESXi\'s `-N`; default: defaultTcpipStack)' -r
complete -c vmkstack -n "__fish_vmkstack_using_subcommand route; and __fish_seen_subcommand_from get" -l control -d 'Control socket of the daemon [env: VMKSTACK_CONTROL] [default: /run/vmkstack/vmkstack.sock]' -r -F
complete -c vmkstack -n "__fish_vmkstack_using_subcommand route; and __fish_seen_subcommand_from get" -l json -d 'Print the daemon\'s answer as JSON instead of a table'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand route; and __fish_seen_subcommand_from get" -s h -l help -d 'Print help'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand route; and __fish_seen_subcommand_from get" -s V -l version -d 'Print version'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand route; and __fish_seen_subcommand_from help" -f -a "list" -d 'List routes as `esxcfg-route -l` does: static, Local Subnet, default'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand route; and __fish_seen_subcommand_from help" -f -a "add" -d 'Add a static route, or set the default gateway with `default`'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand route; and __fish_seen_subcommand_from help" -f -a "remove" -d 'Remove a static route, or the default gateway with `default`'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand route; and __fish_seen_subcommand_from help" -f -a "get" -d 'Explain which route, vmknic, gateway and source traffic to ADDR uses, and which gateway wins (a vmknic\'s own default gateway, ESXi 6.5+, or the netstack\'s)'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand route; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand neighbor; and not __fish_seen_subcommand_from list remove help" -s N -l netstack -d 'The netstack to act on (ESXi\'s `-N`; default: defaultTcpipStack)' -r
complete -c vmkstack -n "__fish_vmkstack_using_subcommand neighbor; and not __fish_seen_subcommand_from list remove help" -l control -d 'Control socket of the daemon [env: VMKSTACK_CONTROL] [default: /run/vmkstack/vmkstack.sock]' -r -F
complete -c vmkstack -n "__fish_vmkstack_using_subcommand neighbor; and not __fish_seen_subcommand_from list remove help" -s h -l help -d 'Print help'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand neighbor; and not __fish_seen_subcommand_from list remove help" -s V -l version -d 'Print version'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand neighbor; and not __fish_seen_subcommand_from list remove help" -f -a "list" -d 'List neighbours'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand neighbor; and not __fish_seen_subcommand_from list remove help" -f -a "remove" -d 'Forget a neighbour'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand neighbor; and not __fish_seen_subcommand_from list remove help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand neighbor; and __fish_seen_subcommand_from list" -s N -l netstack -d 'The netstack to act on (ESXi\'s `-N`; default: defaultTcpipStack)' -r
complete -c vmkstack -n "__fish_vmkstack_using_subcommand neighbor; and __fish_seen_subcommand_from list" -l control -d 'Control socket of the daemon [env: VMKSTACK_CONTROL] [default: /run/vmkstack/vmkstack.sock]' -r -F
complete -c vmkstack -n "__fish_vmkstack_using_subcommand neighbor; and __fish_seen_subcommand_from list" -l json -d 'Print the daemon\'s answer as JSON instead of a table'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand neighbor; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand neighbor; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand neighbor; and __fish_seen_subcommand_from remove" -s N -l netstack -d 'The netstack to act on (ESXi\'s `-N`; default: defaultTcpipStack)' -r
complete -c vmkstack -n "__fish_vmkstack_using_subcommand neighbor; and __fish_seen_subcommand_from remove" -l control -d 'Control socket of the daemon [env: VMKSTACK_CONTROL] [default: /run/vmkstack/vmkstack.sock]' -r -F
complete -c vmkstack -n "__fish_vmkstack_using_subcommand neighbor; and __fish_seen_subcommand_from remove" -s h -l help -d 'Print help'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand neighbor; and __fish_seen_subcommand_from remove" -s V -l version -d 'Print version'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand neighbor; and __fish_seen_subcommand_from help" -f -a "list" -d 'List neighbours'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand neighbor; and __fish_seen_subcommand_from help" -f -a "remove" -d 'Forget a neighbour'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand neighbor; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand stats" -l interval -d 'Print the totals and the rates over each interval of SECS seconds, until Ctrl-C or --count' -r
complete -c vmkstack -n "__fish_vmkstack_using_subcommand stats" -l count -d 'With --interval: intervals to print, then exit' -r
complete -c vmkstack -n "__fish_vmkstack_using_subcommand stats" -l control -d 'Control socket of the daemon [env: VMKSTACK_CONTROL] [default: /run/vmkstack/vmkstack.sock]' -r -F
complete -c vmkstack -n "__fish_vmkstack_using_subcommand stats" -l json -d 'Print JSON instead of text'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand stats" -l runtime -d 'What each stage of the data plane cost so far: calls, packets, nanoseconds per packet (VPP\'s `show runtime`)'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand stats" -s h -l help -d 'Print help'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand stats" -s V -l version -d 'Print version'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand top" -s d -d 'Seconds between samples (decimals allowed)' -r
complete -c vmkstack -n "__fish_vmkstack_using_subcommand top" -s n -d 'Samples to show, then exit (default: until `q` or Ctrl-C)' -r
complete -c vmkstack -n "__fish_vmkstack_using_subcommand top" -l control -d 'Control socket of the daemon [env: VMKSTACK_CONTROL] [default: /run/vmkstack/vmkstack.sock]' -r -F
complete -c vmkstack -n "__fish_vmkstack_using_subcommand top" -s b -d 'Batch mode: CSV on standard output, one row per vmknic per sample'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand top" -s h -l help -d 'Print help'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand top" -s V -l version -d 'Print version'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand probe; and not __fish_seen_subcommand_from iscsi nfs help" -s N -l netstack -d 'The netstack to act on (ESXi\'s `-N`; default: defaultTcpipStack)' -r
complete -c vmkstack -n "__fish_vmkstack_using_subcommand probe; and not __fish_seen_subcommand_from iscsi nfs help" -l control -d 'Control socket of the daemon [env: VMKSTACK_CONTROL] [default: /run/vmkstack/vmkstack.sock]' -r -F
complete -c vmkstack -n "__fish_vmkstack_using_subcommand probe; and not __fish_seen_subcommand_from iscsi nfs help" -s h -l help -d 'Print help'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand probe; and not __fish_seen_subcommand_from iscsi nfs help" -s V -l version -d 'Print version'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand probe; and not __fish_seen_subcommand_from iscsi nfs help" -f -a "iscsi" -d 'iSCSI: TCP connect, discovery Login, SendTargets=All; lists targets and portals. With `--read-test SECS`, then reads from the first disk LUN of the first target and reports MB/s'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand probe; and not __fish_seen_subcommand_from iscsi nfs help" -f -a "nfs" -d 'NFS: RPC NULL to the portmapper, mountd and nfs (v3, v4), and the export list'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand probe; and not __fish_seen_subcommand_from iscsi nfs help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand probe; and __fish_seen_subcommand_from iscsi" -s I -d 'Send from this vmknic' -r
complete -c vmkstack -n "__fish_vmkstack_using_subcommand probe; and __fish_seen_subcommand_from iscsi" -s w -d 'Seconds to wait for each step' -r
complete -c vmkstack -n "__fish_vmkstack_using_subcommand probe; and __fish_seen_subcommand_from iscsi" -l read-test -d 'After discovery, log in to the first target and read its first disk LUN for SECS seconds (1-600): sequential 256 KiB READ(16), 8 in flight, through the stack; reports MB/s' -r
complete -c vmkstack -n "__fish_vmkstack_using_subcommand probe; and __fish_seen_subcommand_from iscsi" -s N -l netstack -d 'The netstack to act on (ESXi\'s `-N`; default: defaultTcpipStack)' -r
complete -c vmkstack -n "__fish_vmkstack_using_subcommand probe; and __fish_seen_subcommand_from iscsi" -l control -d 'Control socket of the daemon [env: VMKSTACK_CONTROL] [default: /run/vmkstack/vmkstack.sock]' -r -F
complete -c vmkstack -n "__fish_vmkstack_using_subcommand probe; and __fish_seen_subcommand_from iscsi" -l json -d 'Print JSON'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand probe; and __fish_seen_subcommand_from iscsi" -s h -l help -d 'Print help'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand probe; and __fish_seen_subcommand_from iscsi" -s V -l version -d 'Print version'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand probe; and __fish_seen_subcommand_from nfs" -s I -d 'Send from this vmknic' -r
complete -c vmkstack -n "__fish_vmkstack_using_subcommand probe; and __fish_seen_subcommand_from nfs" -s w -d 'Seconds to wait for each step' -r
complete -c vmkstack -n "__fish_vmkstack_using_subcommand probe; and __fish_seen_subcommand_from nfs" -s N -l netstack -d 'The netstack to act on (ESXi\'s `-N`; default: defaultTcpipStack)' -r
complete -c vmkstack -n "__fish_vmkstack_using_subcommand probe; and __fish_seen_subcommand_from nfs" -l control -d 'Control socket of the daemon [env: VMKSTACK_CONTROL] [default: /run/vmkstack/vmkstack.sock]' -r -F
complete -c vmkstack -n "__fish_vmkstack_using_subcommand probe; and __fish_seen_subcommand_from nfs" -l json -d 'Print JSON'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand probe; and __fish_seen_subcommand_from nfs" -s h -l help -d 'Print help'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand probe; and __fish_seen_subcommand_from nfs" -s V -l version -d 'Print version'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand probe; and __fish_seen_subcommand_from help" -f -a "iscsi" -d 'iSCSI: TCP connect, discovery Login, SendTargets=All; lists targets and portals. With `--read-test SECS`, then reads from the first disk LUN of the first target and reports MB/s'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand probe; and __fish_seen_subcommand_from help" -f -a "nfs" -d 'NFS: RPC NULL to the portmapper, mountd and nfs (v3, v4), and the export list'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand probe; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand netstack; and not __fish_seen_subcommand_from list add remove help" -s N -l netstack -d 'The netstack to act on (ESXi\'s `-N`; default: defaultTcpipStack)' -r
complete -c vmkstack -n "__fish_vmkstack_using_subcommand netstack; and not __fish_seen_subcommand_from list add remove help" -l control -d 'Control socket of the daemon [env: VMKSTACK_CONTROL] [default: /run/vmkstack/vmkstack.sock]' -r -F
complete -c vmkstack -n "__fish_vmkstack_using_subcommand netstack; and not __fish_seen_subcommand_from list add remove help" -s h -l help -d 'Print help'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand netstack; and not __fish_seen_subcommand_from list add remove help" -s V -l version -d 'Print version'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand netstack; and not __fish_seen_subcommand_from list add remove help" -f -a "list" -d 'List the netstacks with their gateway, vmknics and route count'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand netstack; and not __fish_seen_subcommand_from list add remove help" -f -a "add" -d 'Add an empty netstack (its own routing table, gateway and ARP table)'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand netstack; and not __fish_seen_subcommand_from list add remove help" -f -a "remove" -d 'Remove a netstack no vmknic uses'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand netstack; and not __fish_seen_subcommand_from list add remove help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand netstack; and __fish_seen_subcommand_from list" -s N -l netstack -d 'The netstack to act on (ESXi\'s `-N`; default: defaultTcpipStack)' -r
complete -c vmkstack -n "__fish_vmkstack_using_subcommand netstack; and __fish_seen_subcommand_from list" -l control -d 'Control socket of the daemon [env: VMKSTACK_CONTROL] [default: /run/vmkstack/vmkstack.sock]' -r -F
complete -c vmkstack -n "__fish_vmkstack_using_subcommand netstack; and __fish_seen_subcommand_from list" -l json -d 'Print the daemon\'s answer as JSON instead of a table'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand netstack; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand netstack; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand netstack; and __fish_seen_subcommand_from add" -s N -l netstack -d 'The netstack to act on (ESXi\'s `-N`; default: defaultTcpipStack)' -r
complete -c vmkstack -n "__fish_vmkstack_using_subcommand netstack; and __fish_seen_subcommand_from add" -l control -d 'Control socket of the daemon [env: VMKSTACK_CONTROL] [default: /run/vmkstack/vmkstack.sock]' -r -F
complete -c vmkstack -n "__fish_vmkstack_using_subcommand netstack; and __fish_seen_subcommand_from add" -s h -l help -d 'Print help'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand netstack; and __fish_seen_subcommand_from add" -s V -l version -d 'Print version'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand netstack; and __fish_seen_subcommand_from remove" -s N -l netstack -d 'The netstack to act on (ESXi\'s `-N`; default: defaultTcpipStack)' -r
complete -c vmkstack -n "__fish_vmkstack_using_subcommand netstack; and __fish_seen_subcommand_from remove" -l control -d 'Control socket of the daemon [env: VMKSTACK_CONTROL] [default: /run/vmkstack/vmkstack.sock]' -r -F
complete -c vmkstack -n "__fish_vmkstack_using_subcommand netstack; and __fish_seen_subcommand_from remove" -s h -l help -d 'Print help'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand netstack; and __fish_seen_subcommand_from remove" -s V -l version -d 'Print version'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand netstack; and __fish_seen_subcommand_from help" -f -a "list" -d 'List the netstacks with their gateway, vmknics and route count'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand netstack; and __fish_seen_subcommand_from help" -f -a "add" -d 'Add an empty netstack (its own routing table, gateway and ARP table)'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand netstack; and __fish_seen_subcommand_from help" -f -a "remove" -d 'Remove a netstack no vmknic uses'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand netstack; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand reload" -l control -d 'Control socket of the daemon [env: VMKSTACK_CONTROL] [default: /run/vmkstack/vmkstack.sock]' -r -F
complete -c vmkstack -n "__fish_vmkstack_using_subcommand reload" -s h -l help -d 'Print help'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand reload" -s V -l version -d 'Print version'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand forward; and not __fish_seen_subcommand_from list remove help" -s I -d 'Connect from this vmknic\'s address' -r
complete -c vmkstack -n "__fish_vmkstack_using_subcommand forward; and not __fish_seen_subcommand_from list remove help" -l max-connections -d 'Most connections at once (default 64); more are reset' -r
complete -c vmkstack -n "__fish_vmkstack_using_subcommand forward; and not __fish_seen_subcommand_from list remove help" -s N -l netstack -d 'The netstack whose vmknics connect (ESXi\'s `-N`; default `defaultTcpipStack`). With `list`, only that netstack\'s forwards (all without `-N`)' -r
complete -c vmkstack -n "__fish_vmkstack_using_subcommand forward; and not __fish_seen_subcommand_from list remove help" -l control -d 'Control socket of the daemon [env: VMKSTACK_CONTROL] [default: /run/vmkstack/vmkstack.sock]' -r -F
complete -c vmkstack -n "__fish_vmkstack_using_subcommand forward; and not __fish_seen_subcommand_from list remove help" -s h -l help -d 'Print help'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand forward; and not __fish_seen_subcommand_from list remove help" -s V -l version -d 'Print version'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand forward; and not __fish_seen_subcommand_from list remove help" -a "list" -d 'List forwards with their connection and byte counters'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand forward; and not __fish_seen_subcommand_from list remove help" -a "remove" -d 'Stop a forward (its connections are reset)'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand forward; and not __fish_seen_subcommand_from list remove help" -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand forward; and __fish_seen_subcommand_from list" -s N -l netstack -d 'The netstack whose vmknics connect (ESXi\'s `-N`; default `defaultTcpipStack`). With `list`, only that netstack\'s forwards (all without `-N`)' -r
complete -c vmkstack -n "__fish_vmkstack_using_subcommand forward; and __fish_seen_subcommand_from list" -l control -d 'Control socket of the daemon [env: VMKSTACK_CONTROL] [default: /run/vmkstack/vmkstack.sock]' -r -F
complete -c vmkstack -n "__fish_vmkstack_using_subcommand forward; and __fish_seen_subcommand_from list" -l json -d 'Print the daemon\'s answer as JSON instead of a table'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand forward; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand forward; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand forward; and __fish_seen_subcommand_from remove" -s N -l netstack -d 'The netstack whose vmknics connect (ESXi\'s `-N`; default `defaultTcpipStack`). With `list`, only that netstack\'s forwards (all without `-N`)' -r
complete -c vmkstack -n "__fish_vmkstack_using_subcommand forward; and __fish_seen_subcommand_from remove" -l control -d 'Control socket of the daemon [env: VMKSTACK_CONTROL] [default: /run/vmkstack/vmkstack.sock]' -r -F
complete -c vmkstack -n "__fish_vmkstack_using_subcommand forward; and __fish_seen_subcommand_from remove" -s h -l help -d 'Print help'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand forward; and __fish_seen_subcommand_from remove" -s V -l version -d 'Print version'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand forward; and __fish_seen_subcommand_from help" -f -a "list" -d 'List forwards with their connection and byte counters'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand forward; and __fish_seen_subcommand_from help" -f -a "remove" -d 'Stop a forward (its connections are reset)'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand forward; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand capture" -l control -d 'Control socket of the daemon [env: VMKSTACK_CONTROL] [default: /run/vmkstack/vmkstack.sock]' -r -F
complete -c vmkstack -n "__fish_vmkstack_using_subcommand generate; and not __fish_seen_subcommand_from completions man help" -l control -d 'Control socket of the daemon [env: VMKSTACK_CONTROL] [default: /run/vmkstack/vmkstack.sock]' -r -F
complete -c vmkstack -n "__fish_vmkstack_using_subcommand generate; and not __fish_seen_subcommand_from completions man help" -s h -l help -d 'Print help'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand generate; and not __fish_seen_subcommand_from completions man help" -s V -l version -d 'Print version'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand generate; and not __fish_seen_subcommand_from completions man help" -f -a "completions" -d 'Completions for bash, zsh and fish, for `vmkstack` and each ESX personality: DIR/bash/NAME, DIR/zsh/_NAME, DIR/fish/NAME.fish'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand generate; and not __fish_seen_subcommand_from completions man help" -f -a "man" -d 'Man pages (section 1) for `vmkstack`, its subcommands and each ESX personality'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand generate; and not __fish_seen_subcommand_from completions man help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand generate; and __fish_seen_subcommand_from completions" -l control -d 'Control socket of the daemon [env: VMKSTACK_CONTROL] [default: /run/vmkstack/vmkstack.sock]' -r -F
complete -c vmkstack -n "__fish_vmkstack_using_subcommand generate; and __fish_seen_subcommand_from completions" -s h -l help -d 'Print help'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand generate; and __fish_seen_subcommand_from completions" -s V -l version -d 'Print version'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand generate; and __fish_seen_subcommand_from man" -l control -d 'Control socket of the daemon [env: VMKSTACK_CONTROL] [default: /run/vmkstack/vmkstack.sock]' -r -F
complete -c vmkstack -n "__fish_vmkstack_using_subcommand generate; and __fish_seen_subcommand_from man" -s h -l help -d 'Print help'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand generate; and __fish_seen_subcommand_from man" -s V -l version -d 'Print version'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand generate; and __fish_seen_subcommand_from help" -f -a "completions" -d 'Completions for bash, zsh and fish, for `vmkstack` and each ESX personality: DIR/bash/NAME, DIR/zsh/_NAME, DIR/fish/NAME.fish'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand generate; and __fish_seen_subcommand_from help" -f -a "man" -d 'Man pages (section 1) for `vmkstack`, its subcommands and each ESX personality'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand generate; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand esxcfg-route" -s f -l family -d 'The address family: V4 (the default) or V6' -r
complete -c vmkstack -n "__fish_vmkstack_using_subcommand esxcfg-route" -s N -l netstack -d 'The netstack to act on (default: defaultTcpipStack)' -r
complete -c vmkstack -n "__fish_vmkstack_using_subcommand esxcfg-route" -l control -d 'Control socket of the daemon [env: VMKSTACK_CONTROL] [default: /run/vmkstack/vmkstack.sock]' -r -F
complete -c vmkstack -n "__fish_vmkstack_using_subcommand esxcfg-route" -s a -l add -d 'Add a route (or the default gateway)'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand esxcfg-route" -s d -l del -d 'Delete a route (or the default gateway)'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand esxcfg-route" -s l -l list -d 'List the routing table'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand esxcfg-route" -s n -l neighbor-list -d 'List the neighbour (ARP) table'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand esxcfg-route" -s h -l help -d 'Print help'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand esxcfg-route" -s V -l version -d 'Print version'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand esxcfg-vmknic" -s i -l ip -d 'IPv4 address, IPv6 address/prefix length, or DHCP' -r
complete -c vmkstack -n "__fish_vmkstack_using_subcommand esxcfg-vmknic" -s 6 -l enable-ipv6 -d 'Enable IPv6 (true or false; with -a and an IPv6 address)' -r
complete -c vmkstack -n "__fish_vmkstack_using_subcommand esxcfg-vmknic" -s P -l enable-ipv6-autoconf -d 'IPv6 router advertisement autoconfiguration (true or false): addresses and a default router from Router Advertisements' -r
complete -c vmkstack -n "__fish_vmkstack_using_subcommand esxcfg-vmknic" -s n -l netmask -d 'Netmask, dotted or as a length' -r
complete -c vmkstack -n "__fish_vmkstack_using_subcommand esxcfg-vmknic" -s m -l mtu -d 'MTU (68-9000)' -r
complete -c vmkstack -n "__fish_vmkstack_using_subcommand esxcfg-vmknic" -s M -l mac -d 'MAC address (with -a)' -r
complete -c vmkstack -n "__fish_vmkstack_using_subcommand esxcfg-vmknic" -s p -l portgroup -d 'Port group name, instead of the argument' -r
complete -c vmkstack -n "__fish_vmkstack_using_subcommand esxcfg-vmknic" -s N -l netstack -d 'The netstack (with -a: the one the vmknic joins; with -l: only its vmknics)' -r
complete -c vmkstack -n "__fish_vmkstack_using_subcommand esxcfg-vmknic" -l control -d 'Control socket of the daemon [env: VMKSTACK_CONTROL] [default: /run/vmkstack/vmkstack.sock]' -r -F
complete -c vmkstack -n "__fish_vmkstack_using_subcommand esxcfg-vmknic" -s l -l list -d 'List the vmknics'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand esxcfg-vmknic" -s a -l add -d 'Add a vmknic on a port group'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand esxcfg-vmknic" -s d -l del -d 'Delete the vmknic on a port group'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand esxcfg-vmknic" -s e -l enable-vmknic -d 'Enable the vmknic on a port group'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand esxcfg-vmknic" -s D -l disable-vmknic -d 'Disable the vmknic on a port group'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand esxcfg-vmknic" -s h -l help -d 'Print help'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand esxcfg-vmknic" -s V -l version -d 'Print version'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand vmkping" -s I -d 'Send from this vmknic, bypassing the routing lookup' -r
complete -c vmkstack -n "__fish_vmkstack_using_subcommand vmkping" -s N -d 'Send through this gateway, bypassing the routing table; it must be on a vmknic subnet (IPv6 with -6: on a vmknic prefix, or link-local with -I)' -r
complete -c vmkstack -n "__fish_vmkstack_using_subcommand vmkping" -s S -d 'The netstack to send from (ESXi\'s `-S`; default: defaultTcpipStack)' -r
complete -c vmkstack -n "__fish_vmkstack_using_subcommand vmkping" -s c -d 'Number of echo requests' -r
complete -c vmkstack -n "__fish_vmkstack_using_subcommand vmkping" -s s -d 'ICMP payload bytes (0-65507)' -r
complete -c vmkstack -n "__fish_vmkstack_using_subcommand vmkping" -s i -d 'Seconds between requests (decimals allowed)' -r
complete -c vmkstack -n "__fish_vmkstack_using_subcommand vmkping" -s W -d 'Seconds to wait for each reply' -r
complete -c vmkstack -n "__fish_vmkstack_using_subcommand vmkping" -s t -d 'IP time to live' -r
complete -c vmkstack -n "__fish_vmkstack_using_subcommand vmkping" -l control -d 'Control socket of the daemon [env: VMKSTACK_CONTROL] [default: /run/vmkstack/vmkstack.sock]' -r -F
complete -c vmkstack -n "__fish_vmkstack_using_subcommand vmkping" -s 4 -d 'IPv4 (the default)'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand vmkping" -s 6 -d 'IPv6: the host is an IPv6 address (-t is the hop limit)'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand vmkping" -s d -d 'Set don\'t-fragment (refused when larger than the egress MTU)'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand vmkping" -s h -l help -d 'Print help'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand esxcli; and not __fish_seen_subcommand_from network" -l formatter -d 'Print listings as csv, keyvalue or json (ESXi\'s field names)' -r -f -a "csv\t'Comma-separated: a header row of field names, columns in alphabetical order, every line ending with a comma (as esxcli writes them)'
keyvalue\t'`Structure.FieldName.type=value`, a line per field'
json\t'A JSON array of objects keyed by field name'"
complete -c vmkstack -n "__fish_vmkstack_using_subcommand esxcli; and not __fish_seen_subcommand_from network" -l control -d 'Control socket of the daemon [env: VMKSTACK_CONTROL] [default: /run/vmkstack/vmkstack.sock]' -r -F
complete -c vmkstack -n "__fish_vmkstack_using_subcommand esxcli; and not __fish_seen_subcommand_from network" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand esxcli; and not __fish_seen_subcommand_from network" -f -a "network" -d 'Operations on the host\'s networking'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand esxcli; and __fish_seen_subcommand_from network" -l control -d 'Control socket of the daemon [env: VMKSTACK_CONTROL] [default: /run/vmkstack/vmkstack.sock]' -r -F
complete -c vmkstack -n "__fish_vmkstack_using_subcommand esxcli; and __fish_seen_subcommand_from network" -s h -l help -d 'Print help'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand esxcli; and __fish_seen_subcommand_from network" -f -a "ip" -d 'The VMkernel TCP/IP stack'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand esxcli; and __fish_seen_subcommand_from network" -f -a "diag" -d 'Network diagnostics'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand nc" -s w -d 'Seconds to wait for the connection' -r
complete -c vmkstack -n "__fish_vmkstack_using_subcommand nc" -s s -d 'Connect from this address: the vmknic that holds it' -r
complete -c vmkstack -n "__fish_vmkstack_using_subcommand nc" -s N -d 'The netstack to connect from (vmkstack\'s; default: defaultTcpipStack)' -r
complete -c vmkstack -n "__fish_vmkstack_using_subcommand nc" -s I -d 'Connect from this vmknic (vmkN); a number is netcat\'s receive buffer length, ignored' -r
complete -c vmkstack -n "__fish_vmkstack_using_subcommand nc" -l control -d 'Control socket of the daemon [env: VMKSTACK_CONTROL] [default: /run/vmkstack/vmkstack.sock]' -r -F
complete -c vmkstack -n "__fish_vmkstack_using_subcommand nc" -s z -d 'Connect, then close without sending data (required: the only supported mode)'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand nc" -s 4 -d 'IPv4 addresses only'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand nc" -s 6 -d 'IPv6 addresses only'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand nc" -s v -d 'Report the outcome on standard error'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand nc" -s n -d 'Numeric addresses only (always the case here)'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand nc" -s h -l help -d 'Print help'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand pktcap-uw" -l vmk -d 'Capture at this vmknic (vmkN or port group)' -r
complete -c vmkstack -n "__fish_vmkstack_using_subcommand pktcap-uw" -l dir -d 'Direction: 0 received (default), 1 sent, 2 both' -r
complete -c vmkstack -n "__fish_vmkstack_using_subcommand pktcap-uw" -l capture -d 'Capture point instead of a vmknic\'s receive/transmit: Drop, Forward or Endpoint' -r
complete -c vmkstack -n "__fish_vmkstack_using_subcommand pktcap-uw" -s o -l outfile -d 'Write pcapng to FILE (`-` for standard output)' -r
complete -c vmkstack -n "__fish_vmkstack_using_subcommand pktcap-uw" -s c -l count -d 'Stop after COUNT packets' -r
complete -c vmkstack -n "__fish_vmkstack_using_subcommand pktcap-uw" -l srcip -d 'IPv4 source address' -r
complete -c vmkstack -n "__fish_vmkstack_using_subcommand pktcap-uw" -l dstip -d 'IPv4 destination address' -r
complete -c vmkstack -n "__fish_vmkstack_using_subcommand pktcap-uw" -l ip -d 'IPv4 address, either way' -r
complete -c vmkstack -n "__fish_vmkstack_using_subcommand pktcap-uw" -l proto -d 'IP protocol, hexadecimal as on ESX (0x06) or decimal' -r
complete -c vmkstack -n "__fish_vmkstack_using_subcommand pktcap-uw" -l tcpport -d 'TCP port, either way' -r
complete -c vmkstack -n "__fish_vmkstack_using_subcommand pktcap-uw" -l udpport -d 'UDP port, either way' -r
complete -c vmkstack -n "__fish_vmkstack_using_subcommand pktcap-uw" -l control -d 'Control socket of the daemon [env: VMKSTACK_CONTROL] [default: /run/vmkstack/vmkstack.sock]' -r -F
complete -c vmkstack -n "__fish_vmkstack_using_subcommand pktcap-uw" -s h -l help -d 'Print help'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand help; and not __fish_seen_subcommand_from check demo daemon vmknic route neighbor stats top probe netstack reload forward capture generate esxcfg-route esxcfg-vmknic vmkping esxcli nc pktcap-uw help" -f -a "check" -d 'Validate a configuration and show the vmknic and route listings as ESX would'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand help; and not __fish_seen_subcommand_from check demo daemon vmknic route neighbor stats top probe netstack reload forward capture generate esxcfg-route esxcfg-vmknic vmkping esxcli nc pktcap-uw help" -f -a "demo" -d 'Replay the ESX article on the built-in storage lab (root; about a minute; leaves nothing behind)'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand help; and not __fish_seen_subcommand_from check demo daemon vmknic route neighbor stats top probe netstack reload forward capture generate esxcfg-route esxcfg-vmknic vmkping esxcli nc pktcap-uw help" -f -a "daemon" -d 'Run the netstack in the foreground: create the vmknics\' TAP devices, answer on their addresses, and forward between them when `forwarding = true`'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand help; and not __fish_seen_subcommand_from check demo daemon vmknic route neighbor stats top probe netstack reload forward capture generate esxcfg-route esxcfg-vmknic vmkping esxcli nc pktcap-uw help" -f -a "vmknic" -d 'List, add, remove and change VMkernel interfaces on the running daemon'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand help; and not __fish_seen_subcommand_from check demo daemon vmknic route neighbor stats top probe netstack reload forward capture generate esxcfg-route esxcfg-vmknic vmkping esxcli nc pktcap-uw help" -f -a "route" -d 'List, add, remove and explain routes (and the default gateway) on the running daemon'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand help; and not __fish_seen_subcommand_from check demo daemon vmknic route neighbor stats top probe netstack reload forward capture generate esxcfg-route esxcfg-vmknic vmkping esxcli nc pktcap-uw help" -f -a "neighbor" -d 'List and forget entries of the running daemon\'s neighbour (ARP) table'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand help; and not __fish_seen_subcommand_from check demo daemon vmknic route neighbor stats top probe netstack reload forward capture generate esxcfg-route esxcfg-vmknic vmkping esxcli nc pktcap-uw help" -f -a "stats" -d 'Per-vmknic packet, byte, forwarding and drop counters of the running daemon; with --interval, also their rates over each interval'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand help; and not __fish_seen_subcommand_from check demo daemon vmknic route neighbor stats top probe netstack reload forward capture generate esxcfg-route esxcfg-vmknic vmkping esxcli nc pktcap-uw help" -f -a "top" -d 'A live view of each vmknic\'s rates (esxtop\'s network view): PKTTX/s, MbTX/s, PKTRX/s, MbRX/s, %DRPTX, %DRPRX, FWD/s. Keys t T r R N sort, q quits; -b prints CSV'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand help; and not __fish_seen_subcommand_from check demo daemon vmknic route neighbor stats top probe netstack reload forward capture generate esxcfg-route esxcfg-vmknic vmkping esxcli nc pktcap-uw help" -f -a "probe" -d 'Check an iSCSI or NFS server from the stack itself (`probe iscsi HOST[:PORT]`, `probe nfs HOST`), with a diagnosis for each failure point'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand help; and not __fish_seen_subcommand_from check demo daemon vmknic route neighbor stats top probe netstack reload forward capture generate esxcfg-route esxcfg-vmknic vmkping esxcli nc pktcap-uw help" -f -a "netstack" -d 'List, show, add and remove netstacks (ESXi\'s `esxcli network ip netstack`)'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand help; and not __fish_seen_subcommand_from check demo daemon vmknic route neighbor stats top probe netstack reload forward capture generate esxcfg-route esxcfg-vmknic vmkping esxcli nc pktcap-uw help" -f -a "reload" -d 'Apply the configuration file on disk to the running daemon, as SIGHUP does: the difference (vmknics, routes, gateway, forwarding, forwards) goes live without touching unchanged vmknics, or the file is refused with every problem named and nothing changes'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand help; and not __fish_seen_subcommand_from check demo daemon vmknic route neighbor stats top probe netstack reload forward capture generate esxcfg-route esxcfg-vmknic vmkping esxcli nc pktcap-uw help" -f -a "forward" -d 'Forward a kernel TCP port through the stack: `forward [-I vmkN] LISTEN REMOTE`, `forward list`, `forward remove LISTEN`'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand help; and not __fish_seen_subcommand_from check demo daemon vmknic route neighbor stats top probe netstack reload forward capture generate esxcfg-route esxcfg-vmknic vmkping esxcli nc pktcap-uw help" -f -a "capture" -d 'The same as pktcap-uw'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand help; and not __fish_seen_subcommand_from check demo daemon vmknic route neighbor stats top probe netstack reload forward capture generate esxcfg-route esxcfg-vmknic vmkping esxcli nc pktcap-uw help" -f -a "generate" -d 'Write shell completions or man pages generated from these definitions (packaging)'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand help; and not __fish_seen_subcommand_from check demo daemon vmknic route neighbor stats top probe netstack reload forward capture generate esxcfg-route esxcfg-vmknic vmkping esxcli nc pktcap-uw help" -f -a "esxcfg-route" -d 'esxcfg-route: show or set the default gateway, add or delete routes, list routes (-l) and neighbours (-n)'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand help; and not __fish_seen_subcommand_from check demo daemon vmknic route neighbor stats top probe netstack reload forward capture generate esxcfg-route esxcfg-vmknic vmkping esxcli nc pktcap-uw help" -f -a "esxcfg-vmknic" -d 'esxcfg-vmknic: list (-l), add (-a, -i DHCP), delete (-d), enable (-e), disable (-D) vmknics and change their MTU (-m) or address (-i/-n, -i DHCP)'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand help; and not __fish_seen_subcommand_from check demo daemon vmknic route neighbor stats top probe netstack reload forward capture generate esxcfg-route esxcfg-vmknic vmkping esxcli nc pktcap-uw help" -f -a "vmkping" -d 'vmkping: ICMP echo from the VMkernel stack ([-I vmkN] [-N next_hop] [-c count] [-s size] [-d] [-i interval] [-W timeout] [-t ttl] host)'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand help; and not __fish_seen_subcommand_from check demo daemon vmknic route neighbor stats top probe netstack reload forward capture generate esxcfg-route esxcfg-vmknic vmkping esxcli nc pktcap-uw help" -f -a "esxcli" -d 'esxcli [--formatter csv|keyvalue|json] network {ip route ipv4 list|add|remove, ip interface list|add|remove|set|ipv4 get|set, ip neighbor list|remove, diag ping}'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand help; and not __fish_seen_subcommand_from check demo daemon vmknic route neighbor stats top probe netstack reload forward capture generate esxcfg-route esxcfg-vmknic vmkping esxcli nc pktcap-uw help" -f -a "nc" -d 'nc -z [-nv] [-w secs] [-s source_ip | -I vmkN] host port: check a TCP port from the VMkernel stack (the exit status answers; -v reports as netcat does)'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand help; and not __fish_seen_subcommand_from check demo daemon vmknic route neighbor stats top probe netstack reload forward capture generate esxcfg-route esxcfg-vmknic vmkping esxcli nc pktcap-uw help" -f -a "pktcap-uw" -d 'pktcap-uw: capture packets inside the stack to pcapng ([--vmk vmkN] [--dir 0|1|2] [--capture Drop|Forward|Endpoint] [-o FILE|-] [-c COUNT] [filters])'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand help; and not __fish_seen_subcommand_from check demo daemon vmknic route neighbor stats top probe netstack reload forward capture generate esxcfg-route esxcfg-vmknic vmkping esxcli nc pktcap-uw help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand help; and __fish_seen_subcommand_from vmknic" -f -a "list" -d 'List the vmknics as `esxcfg-vmknic -l` does (a row per address)'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand help; and __fish_seen_subcommand_from vmknic" -f -a "add" -d 'Add a vmknic; without --name the daemon picks the lowest free vmkN'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand help; and __fish_seen_subcommand_from vmknic" -f -a "remove" -d 'Remove a vmknic (by vmkN or port group)'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand help; and __fish_seen_subcommand_from vmknic" -f -a "set" -d 'Change a vmknic\'s MTU, address or state'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand help; and __fish_seen_subcommand_from route" -f -a "list" -d 'List routes as `esxcfg-route -l` does: static, Local Subnet, default'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand help; and __fish_seen_subcommand_from route" -f -a "add" -d 'Add a static route, or set the default gateway with `default`'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand help; and __fish_seen_subcommand_from route" -f -a "remove" -d 'Remove a static route, or the default gateway with `default`'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand help; and __fish_seen_subcommand_from route" -f -a "get" -d 'Explain which route, vmknic, gateway and source traffic to ADDR uses, and which gateway wins (a vmknic\'s own default gateway, ESXi 6.5+, or the netstack\'s)'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand help; and __fish_seen_subcommand_from neighbor" -f -a "list" -d 'List neighbours'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand help; and __fish_seen_subcommand_from neighbor" -f -a "remove" -d 'Forget a neighbour'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand help; and __fish_seen_subcommand_from probe" -f -a "iscsi" -d 'iSCSI: TCP connect, discovery Login, SendTargets=All; lists targets and portals. With `--read-test SECS`, then reads from the first disk LUN of the first target and reports MB/s'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand help; and __fish_seen_subcommand_from probe" -f -a "nfs" -d 'NFS: RPC NULL to the portmapper, mountd and nfs (v3, v4), and the export list'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand help; and __fish_seen_subcommand_from netstack" -f -a "list" -d 'List the netstacks with their gateway, vmknics and route count'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand help; and __fish_seen_subcommand_from netstack" -f -a "add" -d 'Add an empty netstack (its own routing table, gateway and ARP table)'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand help; and __fish_seen_subcommand_from netstack" -f -a "remove" -d 'Remove a netstack no vmknic uses'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand help; and __fish_seen_subcommand_from forward" -f -a "list" -d 'List forwards with their connection and byte counters'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand help; and __fish_seen_subcommand_from forward" -f -a "remove" -d 'Stop a forward (its connections are reset)'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand help; and __fish_seen_subcommand_from generate" -f -a "completions" -d 'Completions for bash, zsh and fish, for `vmkstack` and each ESX personality: DIR/bash/NAME, DIR/zsh/_NAME, DIR/fish/NAME.fish'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand help; and __fish_seen_subcommand_from generate" -f -a "man" -d 'Man pages (section 1) for `vmkstack`, its subcommands and each ESX personality'
complete -c vmkstack -n "__fish_vmkstack_using_subcommand help; and __fish_seen_subcommand_from esxcli" -f -a "network" -d 'Operations on the host\'s networking'
