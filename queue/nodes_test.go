package queue

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/duroworker/duroworker/internal/redistest"
)

func TestUnservedBuckets(t *testing.T) {
	redistest.ForEachBackend(t, func(t *testing.T, rdb *redis.Client, b redistest.Backend) {
		ctx := context.Background()
		s := New(rdb, Options{Prefix: "nodes" + b.Name})
		for i, bucket := range []string{"o:Known", "o:Nobody", "o:Empty"} {
			if err := s.CreateInstance(ctx, CreateRequest{InstanceID: fmt.Sprint("i", i), Name: "n", Bucket: bucket, Message: "{}"}); err != nil {
				t.Fatal(err)
			}
		}
		// Empty the third bucket: fetch and ack its instance as ended.
		res, err := s.FetchOrchestrations(ctx, FetchOrchestrationsRequest{Buckets: []string{"o:Empty"}, Max: 1, LockTimeout: time.Minute})
		if err != nil || len(res.Items) != 1 {
			t.Fatalf("fetch: %v %+v", err, res)
		}
		it := res.Items[0]
		if err := s.AckOrchestration(ctx, OrchestrationAck{InstanceID: it.InstanceID, Token: it.Token, ExecutionID: 1, Status: StatusCompleted, NewEvents: []string{"{}"}}); err != nil {
			t.Fatal(err)
		}

		got, err := s.UnservedBuckets(ctx, 10)
		if err != nil {
			t.Fatal(err)
		}
		sort.Strings(got)
		if fmt.Sprint(got) != "[o:Known o:Nobody]" {
			t.Fatalf("no nodes: unserved = %v", got)
		}
		if err := s.AdvertiseNode(ctx, "node-1", []string{"o:Known", "a:X"}, time.Minute); err != nil {
			t.Fatal(err)
		}
		got, _ = s.UnservedBuckets(ctx, 10)
		if fmt.Sprint(got) != "[o:Nobody]" {
			t.Fatalf("with node-1: unserved = %v", got)
		}
		if err := s.WithdrawNode(ctx, "node-1"); err != nil {
			t.Fatal(err)
		}
		got, _ = s.UnservedBuckets(ctx, 10)
		sort.Strings(got)
		if fmt.Sprint(got) != "[o:Known o:Nobody]" {
			t.Fatalf("after withdraw: unserved = %v", got)
		}
		if err := s.AdvertiseNode(ctx, "", nil, time.Second); err == nil {
			t.Fatal("empty node id accepted")
		}
	})
}

func TestAdvertisedNodeExpires(t *testing.T) {
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	ctx := context.Background()
	s := New(rdb, Options{})
	if err := s.CreateInstance(ctx, CreateRequest{InstanceID: "i", Name: "n", Bucket: "o:A", Message: "{}"}); err != nil {
		t.Fatal(err)
	}
	if err := s.AdvertiseNode(ctx, "short", []string{"o:A"}, 100*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.UnservedBuckets(ctx, 10); len(got) != 0 {
		t.Fatalf("served bucket listed: %v", got)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, err := s.UnservedBuckets(ctx, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == 1 && got[0] == "o:A" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("node never expired: %v", got)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
