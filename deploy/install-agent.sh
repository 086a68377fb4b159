#!/bin/sh
# Installs cloudgov-agent on a Linux VM as a systemd service.
# Usage: install-agent.sh BINARY SERVER_URL TOKEN
#   BINARY      path to the cloudgov-agent binary (cargo build -p cloudgov-agent --profile release-agent)
#   SERVER_URL  the daemon, e.g. https://cloudgov.example.gov.cn
#   TOKEN       this VM's token from `cloudgov vm issue-token VM`
set -eu
[ "$#" -eq 3 ] || { echo "usage: $0 BINARY SERVER_URL TOKEN" >&2; exit 2; }
binary=$1 server=$2 token=$3
[ "$(id -u)" -eq 0 ] || { echo "$0: run as root" >&2; exit 1; }
install -m 0755 "$binary" /usr/local/bin/cloudgov-agent
install -d -m 0750 /etc/cloudgov
umask 077
printf '%s\n' "$token" > /etc/cloudgov/agent.token
cat > /etc/cloudgov/agent.toml <<CONF
server = "$server"
token_file = "/etc/cloudgov/agent.token"
interval_secs = 60
CONF
here=$(dirname "$0")
install -m 0644 "$here/systemd/cloudgov-agent.service" /etc/systemd/system/cloudgov-agent.service
/usr/local/bin/cloudgov-agent --once --print > /dev/null
systemctl daemon-reload
systemctl enable --now cloudgov-agent.service
echo "cloudgov-agent installed and reporting to $server"
