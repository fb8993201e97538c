package queue

// ScriptNamesBySHA maps the SHA1 of every script the Store loads to its
// file name, so that external tests can tell EVALSHA calls apart.
func ScriptNamesBySHA() map[string]string {
	out := map[string]string{}
	entries, err := luaFiles.ReadDir("lua")
	if err != nil {
		panic(err)
	}
	for _, e := range entries {
		if e.Name() == "common.lua" {
			continue
		}
		out[loadScript(e.Name()).Hash()] = e.Name()
	}
	return out
}
