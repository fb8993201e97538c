package queue

import (
	"context"
	"fmt"
)

// WorkBuckets returns every activity bucket name ever used in this
// namespace (tagged and untagged), for workers that serve any tag.
func (s *Store) WorkBuckets(ctx context.Context) ([]string, error) {
	out, err := s.rdb.SMembers(ctx, s.keys.workBucketsKey()).Result()
	if err != nil {
		return nil, fmt.Errorf("reading work buckets: %w", err)
	}
	return out, nil
}
