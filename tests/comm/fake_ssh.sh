#!/bin/sh
# Stand-in for ssh in tests/comm/launch_hosts_test.sh: "fake_ssh.sh HOST COMMAND" logs HOST and runs
# COMMAND here through a shell, as ssh runs it on HOST. Like ssh it is a separate process: killing it
# does not kill the command, which sees its stdin close instead.
host=$1
shift
echo "$host" >> "${FAKE_SSH_LOG:-/dev/null}"
exec 3<&0  # a background job's stdin would be /dev/null: keep the real one on fd 3
sh -c "$*" <&3 3<&- &
wait $!
