# Sourced by the other scripts: make sure the system packages whirl needs are
# present, installing them with apt-get when we are allowed to.
#   need_packages <command>=<debian package> ...   (present when the command is)
#   need_debs <debian package> ...                 (libraries: asks dpkg)
need_packages() {
	local missing=() pkgs=() pair
	for pair in "$@"; do
		command -v "${pair%%=*}" >/dev/null 2>&1 || { missing+=("${pair%%=*}"); pkgs+=("${pair#*=}"); }
	done
	[ ${#missing[@]} -eq 0 ] || apt_install "${missing[*]}" "${pkgs[@]}"
}

need_debs() {
	local pkgs=() pkg
	for pkg in "$@"; do
		dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed' || pkgs+=("$pkg")
	done
	[ ${#pkgs[@]} -eq 0 ] || apt_install "${pkgs[*]}" "${pkgs[@]}"
}

# apt_install <what is missing> <debian package> ...
apt_install() {
	local missing=$1 sudo=""
	shift
	[ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && sudo="sudo"
	if command -v apt-get >/dev/null 2>&1 && { [ "$(id -u)" -eq 0 ] || [ -n "$sudo" ]; }; then
		echo "installing $* (missing: $missing)" >&2
		$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
	else
		echo "missing $missing: install them with: sudo apt-get install -y $*" >&2
		return 1
	fi
}

need_go() {
	command -v go >/dev/null 2>&1 && return 0
	echo "missing go: install Go 1.26 or newer from https://go.dev/dl/ and put it on PATH" >&2
	return 1
}

# need_versitygw: the Versity S3 gateway, a real S3 server for the shared
# video cache tests, built from its Go module (about a minute the first
# time) into $(go env GOPATH)/bin unless it is already there or on PATH.
VERSITYGW_VERSION=v1.8.0
need_versitygw() {
	local bin
	bin="$(go env GOPATH)/bin/versitygw"
	command -v versitygw >/dev/null 2>&1 && return 0
	[ -x "$bin" ] && return 0
	echo "installing versitygw $VERSITYGW_VERSION (go install)" >&2
	go install "github.com/versity/versitygw/cmd/versitygw@$VERSITYGW_VERSION"
}
