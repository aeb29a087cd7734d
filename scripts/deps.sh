# Sourced by the other scripts: make sure the system packages whirl needs are
# present, installing them with apt-get when we are allowed to.
#   need_packages <command>=<debian package> ...
need_packages() {
	local missing=() pkgs=() pair
	for pair in "$@"; do
		command -v "${pair%%=*}" >/dev/null 2>&1 || { missing+=("${pair%%=*}"); pkgs+=("${pair#*=}"); }
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	local sudo=""
	[ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && sudo="sudo"
	if command -v apt-get >/dev/null 2>&1 && { [ "$(id -u)" -eq 0 ] || [ -n "$sudo" ]; }; then
		echo "installing ${pkgs[*]} (missing: ${missing[*]})" >&2
		$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${pkgs[@]}" >/dev/null
	else
		echo "missing ${missing[*]}: install them with: sudo apt-get install -y ${pkgs[*]}" >&2
		return 1
	fi
}

need_go() {
	command -v go >/dev/null 2>&1 && return 0
	echo "missing go: install Go 1.26 or newer from https://go.dev/dl/ and put it on PATH" >&2
	return 1
}
