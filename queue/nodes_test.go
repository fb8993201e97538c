package queue

import (
	"context"
	"fmt"
	"reflect"
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

func TestListNodesDescribesLiveAndLapsedNodes(t *testing.T) {
	redistest.ForEachBackend(t, func(t *testing.T, rdb *redis.Client, b redistest.Backend) {
		ctx := context.Background()
		s := New(rdb, Options{Prefix: "listnodes" + b.Name})
		if nodes, err := s.ListNodes(ctx); err != nil || len(nodes) != 0 {
			t.Fatalf("empty namespace: %v %v", nodes, err)
		}
		desc := &NodeDescription{Host: "h1", PID: 42, Engine: "1.2.0", ReplayRange: ">=1.0.0, <=1.2.0",
			OrchestrationConcurrency: 8, ActivityConcurrency: 16, Tags: "gpu", Sessions: 3}
		if err := s.AdvertiseDescribedNode(ctx, "b-node", desc, []string{"o:X", "a:Y"}, time.Minute); err != nil {
			t.Fatal(err)
		}
		// A node advertised without a description, and one that lapses.
		if err := s.AdvertiseNode(ctx, "a-node", []string{"a:Y"}, time.Minute); err != nil {
			t.Fatal(err)
		}
		if err := s.AdvertiseDescribedNode(ctx, "c-node", desc, []string{"o:Z"}, 50*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		// Wait for c-node to lapse (by the server's clock).
		var nodes []Node
		for deadline := time.Now().Add(10 * time.Second); ; {
			var err error
			if nodes, err = s.ListNodes(ctx); err != nil {
				t.Fatal(err)
			}
			if len(nodes) == 3 && !nodes[2].Live || time.Now().After(deadline) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if len(nodes) != 3 || nodes[0].ID != "a-node" || nodes[1].ID != "b-node" || nodes[2].ID != "c-node" {
			t.Fatalf("nodes = %+v", nodes)
		}
		a, bn, c := nodes[0], nodes[1], nodes[2]
		if !a.Live || fmt.Sprint(a.Buckets) != "[a:Y]" || a.Description != (NodeDescription{}) {
			t.Fatalf("undescribed node = %+v", a)
		}
		if !bn.Live || fmt.Sprint(bn.Buckets) != "[a:Y o:X]" || bn.Description != *desc || bn.LiveSince.IsZero() {
			t.Fatalf("described node = %+v", bn)
		}
		if !bn.LiveUntil.After(bn.LiveSince) {
			t.Fatalf("live until %v not after live since %v", bn.LiveUntil, bn.LiveSince)
		}
		if c.Live || len(c.Buckets) != 0 || c.Description != (NodeDescription{}) {
			t.Fatalf("lapsed node = %+v", c)
		}
		if bn.TTL != time.Minute || c.TTL != 50*time.Millisecond {
			t.Fatalf("TTLs %v and %v, want the advertised 1m and 50ms", bn.TTL, c.TTL)
		}
		// GetNode reads one node as ListNodes does.
		if one, ok, err := s.GetNode(ctx, "b-node"); err != nil || !ok || !reflect.DeepEqual(one, bn) {
			t.Fatalf("GetNode(b-node) = %+v, %v, %v; ListNodes had %+v", one, ok, err, bn)
		}
		if one, ok, err := s.GetNode(ctx, "c-node"); err != nil || !ok || one.Live {
			t.Fatalf("GetNode(c-node) = %+v, %v, %v; want it listed, lapsed", one, ok, err)
		}
		if _, ok, err := s.GetNode(ctx, "nobody"); err != nil || ok {
			t.Fatalf("GetNode(nobody) = %v, %v; want not listed", ok, err)
		}

		// Advertising again without a description drops the old one.
		if err := s.AdvertiseNode(ctx, "b-node", []string{"o:X"}, time.Minute); err != nil {
			t.Fatal(err)
		}
		nodes, _ = s.ListNodes(ctx)
		if nodes[1].Description != (NodeDescription{}) {
			t.Fatalf("stale description kept: %+v", nodes[1])
		}
		if err := s.WithdrawNode(ctx, "b-node"); err != nil {
			t.Fatal(err)
		}
		nodes, _ = s.ListNodes(ctx)
		for _, n := range nodes {
			if n.ID == "b-node" {
				t.Fatalf("withdrawn node listed: %+v", n)
			}
		}
		if _, ok, err := s.GetNode(ctx, "b-node"); err != nil || ok {
			t.Fatalf("GetNode of a withdrawn node = %v, %v; want not listed", ok, err)
		}
	})
}
