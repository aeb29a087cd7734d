package client

import (
	"encoding/json"
	"slices"

	whirlv1 "github.com/whirl-dev/whirl/proto/whirl/v1"
)

// serviceConfig is whirl's gRPC service config (whirlv1.ServiceConfig, the
// one file every language loads) as this package's connections apply it,
// less one retry: AcquireLease is not retried by the channel on
// RESOURCE_EXHAUSTED, because Acquire's policy decides what a refusal does
// (AcquireOnce asks once; AcquireRetry reports each refusal, caps and
// jitters the delay). Everything else in the file applies as written. With
// roundRobin, calls are balanced round robin over the addresses the target
// resolves to.
func serviceConfig(roundRobin bool) (string, error) {
	var config map[string]json.RawMessage
	if err := json.Unmarshal([]byte(whirlv1.ServiceConfig()), &config); err != nil {
		return "", err
	}
	var methods []map[string]json.RawMessage
	if err := json.Unmarshal(config["methodConfig"], &methods); err != nil {
		return "", err
	}
	acquire := methodName{whirlv1.AnimationService_ServiceDesc.ServiceName, "AcquireLease"}
	for _, m := range methods {
		var names []methodName
		if err := json.Unmarshal(m["name"], &names); err != nil {
			return "", err
		}
		if _, ok := m["retryPolicy"]; !ok || !slices.Contains(names, acquire) {
			continue
		}
		var policy map[string]json.RawMessage
		if err := json.Unmarshal(m["retryPolicy"], &policy); err != nil {
			return "", err
		}
		var codes []string
		if err := json.Unmarshal(policy["retryableStatusCodes"], &codes); err != nil {
			return "", err
		}
		policy["retryableStatusCodes"], _ = json.Marshal(slices.DeleteFunc(codes, func(c string) bool { return c == "RESOURCE_EXHAUSTED" }))
		m["retryPolicy"], _ = json.Marshal(policy)
	}
	config["methodConfig"], _ = json.Marshal(methods)
	if roundRobin {
		config["loadBalancingConfig"] = json.RawMessage(`[{"round_robin":{}}]`)
	}
	out, err := json.Marshal(config)
	return string(out), err
}

// methodName is a service config's method selector.
type methodName struct {
	Service string `json:"service"`
	Method  string `json:"method,omitempty"`
}
