# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_esxcli_global_optspecs
    string join \n formatter= h/help
end

function __fish_esxcli_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_esxcli_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_esxcli_using_subcommand
    set -l cmd (__fish_esxcli_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c esxcli -n "__fish_esxcli_needs_command" -l formatter -d 'Print listings as csv, keyvalue or json (ESXi\'s field names)' -r -f -a "csv\t'Comma-separated: a header row of field names, columns in alphabetical order, every line ending with a comma (as esxcli writes them)'
keyvalue\t'`Structure.FieldName.type=value`, a line per field'
json\t'A JSON array of objects keyed by field name'"
complete -c esxcli -n "__fish_esxcli_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c esxcli -n "__fish_esxcli_needs_command" -f -a "network" -d 'Operations on the host\'s networking'
complete -c esxcli -n "__fish_esxcli_using_subcommand network; and not __fish_seen_subcommand_from ip diag" -s h -l help -d 'Print help'
complete -c esxcli -n "__fish_esxcli_using_subcommand network; and not __fish_seen_subcommand_from ip diag" -f -a "ip" -d 'The VMkernel TCP/IP stack'
complete -c esxcli -n "__fish_esxcli_using_subcommand network; and not __fish_seen_subcommand_from ip diag" -f -a "diag" -d 'Network diagnostics'
complete -c esxcli -n "__fish_esxcli_using_subcommand network; and __fish_seen_subcommand_from ip" -s h -l help -d 'Print help'
complete -c esxcli -n "__fish_esxcli_using_subcommand network; and __fish_seen_subcommand_from ip" -f -a "route" -d 'VMkernel routing tables'
complete -c esxcli -n "__fish_esxcli_using_subcommand network; and __fish_seen_subcommand_from ip" -f -a "interface" -d 'VMkernel network interfaces'
complete -c esxcli -n "__fish_esxcli_using_subcommand network; and __fish_seen_subcommand_from ip" -f -a "neighbor" -d 'The VMkernel neighbour (ARP) table'
complete -c esxcli -n "__fish_esxcli_using_subcommand network; and __fish_seen_subcommand_from ip" -f -a "netstack" -d 'The VMkernel TCP/IP stacks (netstacks)'
complete -c esxcli -n "__fish_esxcli_using_subcommand network; and __fish_seen_subcommand_from diag" -s h -l help -d 'Print help'
complete -c esxcli -n "__fish_esxcli_using_subcommand network; and __fish_seen_subcommand_from diag" -f -a "ping" -d 'Send ICMP echo requests from the VMkernel stack'
