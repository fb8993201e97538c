package dashboard

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// actionFields are the form fields each action takes (besides ns, csrf
// and confirm).
var actionFields = map[string][]string{
	"start":   {"name", "version", "id", "input"},
	"raise":   {"id", "name", "data"},
	"cancel":  {"id", "reason"},
	"delete":  {"id", "force"},
	"requeue": {"id"},
	"drop":    {"id"},
}

// confirmData is the data of the confirmation page.
type confirmData struct {
	Action string
	Fields []field
	// Summary says what the action will do.
	Summary string
	Back    string
}

type field struct{ Name, Value string }

// doneData is the data of the page shown after an action.
type doneData struct {
	Message  string
	Link     string
	LinkText string
}

// maxForm bounds the body of an action (payloads are at most a few MB in
// the client; the dashboard takes smaller ones).
const maxForm = 1 << 20

func (h *Handler) action(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("action")
	fields, ok := actionFields[name]
	if !ok {
		h.fail(w, r, http.StatusNotFound, "no such action", false)
		return
	}
	if !h.cfg.AllowActions {
		h.fail(w, r, http.StatusForbidden, "actions are off: start the dashboard with --allow-actions to "+name+" from here", false)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		h.fail(w, r, http.StatusBadRequest, "reading the form: "+err.Error(), false)
		return
	}
	if err := checkCSRF(r); err != nil {
		h.fail(w, r, http.StatusForbidden, err.Error(), false)
		return
	}
	ns := h.ns[r.PostFormValue("ns")]
	if ns == nil {
		h.fail(w, r, http.StatusBadRequest, fmt.Sprintf("no namespace %q", r.PostFormValue("ns")), false)
		return
	}
	v := func(k string) string { return r.PostFormValue(k) }
	id := v("id")
	instURL := "/instances/" + pathID(id) + "?ns=" + url.QueryEscape(ns.Prefix)
	dlqURL := "/dlq?ns=" + url.QueryEscape(ns.Prefix)
	if name == "start" && id == "" {
		b := make([]byte, 8)
		_, _ = rand.Read(b)
		id = "dash-" + hex.EncodeToString(b)
		r.PostForm.Set("id", id)
		instURL = "/instances/" + pathID(id) + "?ns=" + url.QueryEscape(ns.Prefix)
	}
	if id == "" {
		h.fail(w, r, http.StatusBadRequest, "no id given", false)
		return
	}
	if v("confirm") != "yes" {
		c := confirmData{Action: name, Back: instURL}
		for _, f := range fields {
			c.Fields = append(c.Fields, field{f, r.PostFormValue(f)})
		}
		c.Fields = append(c.Fields, field{"ns", ns.Prefix})
		switch name {
		case "start":
			c.Summary = fmt.Sprintf("Start %s as instance %s in namespace %s?", orDefault(v("name"), "(no name)"), id, ns.Prefix)
			c.Back = "/?ns=" + url.QueryEscape(ns.Prefix)
		case "raise":
			c.Summary = fmt.Sprintf("Raise event %s on instance %s?", v("name"), id)
		case "cancel":
			c.Summary = fmt.Sprintf("Cancel instance %s?", id)
		case "delete":
			c.Summary = fmt.Sprintf("Delete instance %s with its sub-orchestrations, histories and state? This cannot be undone.", id)
			if v("force") != "" {
				c.Summary += " (force: even if running)"
			}
		case "requeue":
			c.Summary = fmt.Sprintf("Requeue dead letter %s: its instance runs again?", id)
			c.Back = dlqURL
		case "drop":
			c.Summary = fmt.Sprintf("Drop dead letter %s? Its instance stays failed.", id)
			c.Back = dlqURL
		}
		h.render(w, r, http.StatusOK, "confirm", c)
		return
	}
	ctx := r.Context()
	c := ns.Client
	var err error
	done := doneData{Link: instURL, LinkText: "back to the instance"}
	switch name {
	case "start":
		err = c.StartVersioned(ctx, id, v("name"), strings.TrimSpace(v("version")), v("input"))
		done.Message = "Started instance " + id + "."
		done.LinkText = "open the instance"
	case "raise":
		err = c.RaiseEvent(ctx, id, v("name"), v("data"))
		done.Message = "Raised event " + v("name") + " on " + id + "."
	case "cancel":
		err = c.Cancel(ctx, id, v("reason"))
		done.Message = "Asked instance " + id + " to cancel."
	case "delete":
		res, derr := c.DeleteInstance(ctx, id, v("force") != "")
		err = derr
		done.Message = fmt.Sprintf("Deleted %s: %d instances, %d executions, %d events, %d queued messages.", id, res.Instances, res.Executions, res.Events, res.QueueMessages)
		done.Link, done.LinkText = "/instances?ns="+url.QueryEscape(ns.Prefix), "back to the instances"
	case "requeue":
		err = c.RequeueDeadLetter(ctx, id)
		done.Message = "Requeued dead letter " + id + "."
		done.Link, done.LinkText = dlqURL, "back to the dead letters"
	case "drop":
		err = c.DropDeadLetter(ctx, id)
		done.Message = "Dropped dead letter " + id + "."
		done.Link, done.LinkText = dlqURL, "back to the dead letters"
	}
	if err != nil {
		h.fail(w, r, statusOf(err, http.StatusConflict), name+" failed: "+err.Error(), false)
		return
	}
	h.render(w, r, http.StatusOK, "done", done)
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
