package queue

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// ErrEvictingRedis is returned by CheckEvictionPolicy when Redis may evict
// keys to make room (a maxmemory-policy other than noeviction). duroworker
// keeps all its state in Redis: an evicted key loses an instance, a history,
// a lock or a counter without any error, so a worker refuses such a Redis
// unless told otherwise.
var ErrEvictingRedis = errors.New("redis may evict keys (maxmemory-policy is not noeviction)")

// ErrEvictionPolicyUnknown is returned by CheckEvictionPolicy when the
// policy cannot be read: CONFIG is denied (an ACL, a managed Redis that
// renames it) or not implemented. Callers warn and go on: it does not mean
// the policy is wrong.
var ErrEvictionPolicyUnknown = errors.New("cannot read maxmemory-policy")

// CheckEvictionPolicy reads maxmemory-policy with CONFIG GET. It returns nil
// for noeviction, an error wrapping ErrEvictingRedis for any other policy,
// and an error wrapping ErrEvictionPolicyUnknown when the server does not
// answer the question (CONFIG denied or unknown). Other errors (Redis down)
// are returned as they are.
func (s *Store) CheckEvictionPolicy(ctx context.Context) error {
	res, err := s.rdb.ConfigGet(ctx, "maxmemory-policy").Result()
	if err != nil {
		msg := err.Error()
		if strings.HasPrefix(msg, "NOPERM") || strings.Contains(msg, "unknown command") ||
			strings.HasPrefix(msg, "ERR unknown") || strings.Contains(msg, "not supported") {
			return fmt.Errorf("%w: %v", ErrEvictionPolicyUnknown, err)
		}
		return fmt.Errorf("reading maxmemory-policy: %w", err)
	}
	policy, ok := res["maxmemory-policy"]
	if !ok {
		return fmt.Errorf("%w: CONFIG GET maxmemory-policy returned nothing", ErrEvictionPolicyUnknown)
	}
	if policy != "noeviction" {
		return fmt.Errorf("%w: maxmemory-policy is %s; set it to noeviction (CONFIG SET maxmemory-policy noeviction, and in redis.conf)", ErrEvictingRedis, policy)
	}
	return nil
}
