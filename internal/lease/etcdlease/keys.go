package etcdlease

import "strconv"

// The keys under the prefix, laid out as the package comment describes.
func (r *Registry) configKey() string          { return r.prefix + "/config" }
func (r *Registry) slotsPrefix() string        { return r.prefix + "/slots/" }
func (r *Registry) slotKey(i int) string       { return r.slotsPrefix() + strconv.Itoa(i) }
func (r *Registry) tokenKey(h string) string   { return r.prefix + "/tokens/" + h }
func (r *Registry) pinsPrefix() string         { return r.prefix + "/pins/" }
func (r *Registry) pinKey(h string) string     { return r.pinsPrefix() + h }
func (r *Registry) waitersPrefix() string      { return r.prefix + "/waiters/" }
func (r *Registry) endingKey(h string) string  { return r.prefix + "/ending/" + h }
func (r *Registry) requestKey(k string) string { return r.prefix + "/requests/" + k }
