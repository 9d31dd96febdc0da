package fakes

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// GitHubAPI is a fake of the parts of GitHub's API that replies use,
// answering as GitHub documents them:
//
//   - POST /repos/{owner}/{repo}/issues/{number}/comments: a comment on an
//     issue added with AddIssue (404 otherwise), 201 with its id and
//     html_url; 422 for a body over 65,536 characters, 403 on a locked
//     issue or a repository the token may not write (Forbid);
//   - GET  /repos/{owner}/{repo}/issues/{number}/comments: the issue's
//     comments, oldest first, with since, per_page and page;
//   - POST /graphql: the discussion(number) query, its comments(last,
//     before) and the addDiscussionComment mutation, for discussions added
//     with AddDiscussion;
//   - POST /app/installations/{id}/access_tokens: an installation token
//     for a GitHub App JWT signed with the key given to SetApp.
//
// Every other call needs "Authorization: Bearer <token>" (or "token
// <token>") with the token given to NewGitHubAPI or an installation token
// it issued; otherwise 401 Bad credentials.
type GitHubAPI struct {
	srv   *httptest.Server
	token string

	mu          sync.Mutex
	issues      map[string]*ghThread // "owner/repo#n"
	discussions map[string]*ghThread // "owner/repo/discussions#n"
	forbidden   map[string]bool
	appID       string
	appKey      *rsa.PublicKey
	issued      map[string]bool
	nextID      int64
	fail        []int
	onComment   func(GitHubAPIComment)
}

type ghThread struct {
	repo     string
	number   int64
	nodeID   string
	locked   bool
	comments []GitHubAPIComment
}

// GitHubAPIComment is a comment as the fake stores it.
type GitHubAPIComment struct {
	ID        int64
	NodeID    string
	Body      string
	HTMLURL   string
	CreatedAt time.Time
	// Thread is "owner/repo#n" or "owner/repo/discussions#n".
	Thread string
}

// maxGitHubBody is GitHub's limit on a comment body.
const maxGitHubBody = 65536

// NewGitHubAPI starts the fake; token is the one calls must carry.
func NewGitHubAPI(token string) *GitHubAPI {
	g := &GitHubAPI{token: token, issues: map[string]*ghThread{}, discussions: map[string]*ghThread{},
		forbidden: map[string]bool{}, issued: map[string]bool{}, nextID: 1000000}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /repos/{owner}/{repo}/issues/{number}/comments", g.createComment)
	mux.HandleFunc("GET /repos/{owner}/{repo}/issues/{number}/comments", g.listComments)
	mux.HandleFunc("POST /graphql", g.graphQL)
	mux.HandleFunc("POST /app/installations/{id}/access_tokens", g.accessToken)
	g.srv = httptest.NewServer(mux)
	return g
}

// URL is the API base (SIDEKICK_GITHUB_API_URL).
func (g *GitHubAPI) URL() string { return g.srv.URL }

// Close stops the server.
func (g *GitHubAPI) Close() { g.srv.Close() }

// AddIssue creates issue number in repo (owner/name).
func (g *GitHubAPI) AddIssue(repo string, number int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.issues[fmt.Sprintf("%s#%d", repo, number)] = &ghThread{repo: repo, number: number}
}

// AddDiscussion creates discussion number in repo.
func (g *GitHubAPI) AddDiscussion(repo string, number int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.discussions[fmt.Sprintf("%s/discussions#%d", repo, number)] = &ghThread{repo: repo, number: number, nodeID: fmt.Sprintf("D_kwDOfake%d", number)}
}

// LockIssue locks an issue: comments answer 403.
func (g *GitHubAPI) LockIssue(repo string, number int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if t := g.issues[fmt.Sprintf("%s#%d", repo, number)]; t != nil {
		t.locked = true
	}
}

// Forbid makes writes to repo answer 403 Resource not accessible by
// integration.
func (g *GitHubAPI) Forbid(repo string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.forbidden[repo] = true
}

// FailNext makes the next creates answer these HTTP statuses (502, 429
// with Retry-After: 1, …) without storing the comment.
func (g *GitHubAPI) FailNext(statuses ...int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.fail = append(g.fail, statuses...)
}

// OnComment runs f after each comment is stored and before GitHub
// answers: a test can make the client vanish at the worst moment.
func (g *GitHubAPI) OnComment(f func(GitHubAPIComment)) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.onComment = f
}

// SetApp accepts GitHub App JWTs issued by appID and signed with the
// private key of pub.
func (g *GitHubAPI) SetApp(appID string, pub *rsa.PublicKey) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.appID, g.appKey = appID, pub
}

// Comments returns every comment posted, in order.
func (g *GitHubAPI) Comments() []GitHubAPIComment {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []GitHubAPIComment
	for _, m := range []map[string]*ghThread{g.issues, g.discussions} {
		for _, t := range m {
			out = append(out, t.comments...)
		}
	}
	return out
}

// CommentsContaining counts the comments whose body contains s: how many
// times one marked reply arrived.
func (g *GitHubAPI) CommentsContaining(s string) int {
	n := 0
	for _, c := range g.Comments() {
		if strings.Contains(c.Body, s) {
			n++
		}
	}
	return n
}

// authorized checks the bearer token.
func (g *GitHubAPI) authorized(w http.ResponseWriter, r *http.Request) bool {
	auth := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(auth, "Bearer ")
	if !ok {
		tok, ok = strings.CutPrefix(auth, "token ")
	}
	g.mu.Lock()
	good := ok && (tok == g.token && g.token != "" || g.issued[tok])
	g.mu.Unlock()
	if !good {
		ghError(w, http.StatusUnauthorized, "Bad credentials")
	}
	return good
}

func ghError(w http.ResponseWriter, status int, msg string, errs ...map[string]any) {
	body := map[string]any{"message": msg, "documentation_url": "https://docs.github.com/rest", "status": strconv.Itoa(status)}
	if len(errs) > 0 {
		body["errors"] = errs
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

func (g *GitHubAPI) issue(w http.ResponseWriter, r *http.Request) *ghThread {
	repo := r.PathValue("owner") + "/" + r.PathValue("repo")
	g.mu.Lock()
	t := g.issues[repo+"#"+r.PathValue("number")]
	g.mu.Unlock()
	if t == nil {
		ghError(w, http.StatusNotFound, "Not Found")
	}
	return t
}

func (g *GitHubAPI) createComment(w http.ResponseWriter, r *http.Request) {
	if !g.authorized(w, r) {
		return
	}
	t := g.issue(w, r)
	if t == nil {
		return
	}
	var in struct {
		Body *string `json:"body"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 4<<20)).Decode(&in); err != nil {
		ghError(w, http.StatusBadRequest, "Problems parsing JSON")
		return
	}
	g.mu.Lock()
	var fail int
	if len(g.fail) > 0 {
		fail, g.fail = g.fail[0], g.fail[1:]
	}
	forbidden, locked := g.forbidden[t.repo], t.locked
	g.mu.Unlock()
	switch {
	case fail == http.StatusTooManyRequests:
		w.Header().Set("Retry-After", "1")
		ghError(w, fail, "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.")
		return
	case fail != 0:
		ghError(w, fail, http.StatusText(fail))
		return
	case forbidden:
		ghError(w, http.StatusForbidden, "Resource not accessible by integration")
		return
	case locked:
		ghError(w, http.StatusForbidden, "Unable to create comment because issue is locked.")
		return
	case in.Body == nil:
		ghError(w, http.StatusUnprocessableEntity, "Invalid request.\n\n\"body\" wasn't supplied.")
		return
	case utf8.RuneCountInString(*in.Body) > maxGitHubBody:
		ghError(w, http.StatusUnprocessableEntity, "Validation Failed", map[string]any{
			"resource": "IssueComment", "code": "custom", "field": "body",
			"message": fmt.Sprintf("body is too long (maximum is %d characters)", maxGitHubBody)})
		return
	}
	c := g.add(t, fmt.Sprintf("%s#%d", t.repo, t.number), *in.Body, fmt.Sprintf("https://github.com/%s/issues/%d#issuecomment-", t.repo, t.number))
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(commentJSON(c))
}

// add stores a comment on t and runs the OnComment hook; the caller does
// not hold g.mu.
func (g *GitHubAPI) add(t *ghThread, thread, body, urlPrefix string) GitHubAPIComment {
	c := g.store(t, thread, body, urlPrefix)
	g.mu.Lock()
	hook := g.onComment
	g.mu.Unlock()
	if hook != nil {
		hook(c)
	}
	return c
}

func (g *GitHubAPI) store(t *ghThread, thread, body, urlPrefix string) GitHubAPIComment {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.nextID++
	c := GitHubAPIComment{ID: g.nextID, NodeID: fmt.Sprintf("IC_kwDOfake%d", g.nextID), Body: body,
		HTMLURL: urlPrefix + strconv.FormatInt(g.nextID, 10), CreatedAt: time.Now().UTC(), Thread: thread}
	if strings.Contains(thread, "/discussions#") {
		c.NodeID = fmt.Sprintf("DC_kwDOfake%d", g.nextID)
		c.HTMLURL = strings.Replace(c.HTMLURL, "#issuecomment-", "#discussioncomment-", 1)
	}
	t.comments = append(t.comments, c)
	return c
}

func commentJSON(c GitHubAPIComment) map[string]any {
	return map[string]any{
		"id": c.ID, "node_id": c.NodeID, "body": c.Body, "html_url": c.HTMLURL,
		"created_at": c.CreatedAt.Format(time.RFC3339), "updated_at": c.CreatedAt.Format(time.RFC3339),
		"user": userJSON("sidekick-support[bot]"), "author_association": "NONE",
	}
}

func (g *GitHubAPI) listComments(w http.ResponseWriter, r *http.Request) {
	if !g.authorized(w, r) {
		return
	}
	t := g.issue(w, r)
	if t == nil {
		return
	}
	q := r.URL.Query()
	var since time.Time
	if s := q.Get("since"); s != "" {
		var err error
		if since, err = time.Parse(time.RFC3339, s); err != nil {
			ghError(w, http.StatusUnprocessableEntity, "Validation Failed", map[string]any{"field": "since", "code": "invalid"})
			return
		}
	}
	perPage, _ := strconv.Atoi(q.Get("per_page"))
	if perPage <= 0 || perPage > 100 {
		perPage = 30
	}
	page, _ := strconv.Atoi(q.Get("page"))
	page = max(page, 1)
	g.mu.Lock()
	var match []GitHubAPIComment
	for _, c := range t.comments {
		// GitHub's since is on updated_at, to the second; comments here
		// are never updated.
		if !c.CreatedAt.Before(since.Truncate(time.Second)) {
			match = append(match, c)
		}
	}
	g.mu.Unlock()
	out := []map[string]any{}
	for i := (page - 1) * perPage; i < len(match) && i < page*perPage; i++ {
		out = append(out, commentJSON(match[i]))
	}
	writeJSON(w, out)
}

// graphQL answers the three operations replies use, recognised by the
// fields they select.
func (g *GitHubAPI) graphQL(w http.ResponseWriter, r *http.Request) {
	if !g.authorized(w, r) {
		return
	}
	var in struct {
		Query     string         `json:"query"`
		Variables map[string]any `json:"variables"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 4<<20)).Decode(&in); err != nil {
		ghError(w, http.StatusBadRequest, "Problems parsing JSON")
		return
	}
	str := func(k string) string { s, _ := in.Variables[k].(string); return s }
	num, _ := in.Variables["number"].(float64)
	gqlErr := func(typ, msg string) {
		writeJSON(w, map[string]any{"data": nil, "errors": []map[string]any{{"type": typ, "message": msg}}})
	}
	switch {
	case strings.Contains(in.Query, "addDiscussionComment"):
		id, body := str("discussion"), str("body")
		g.mu.Lock()
		var t *ghThread
		var key string
		for k, d := range g.discussions {
			if d.nodeID == id {
				t, key = d, k
			}
		}
		forbidden := t != nil && g.forbidden[t.repo]
		g.mu.Unlock()
		switch {
		case t == nil:
			gqlErr("NOT_FOUND", fmt.Sprintf("Could not resolve to a node with the global id of '%s'", id))
			return
		case forbidden:
			gqlErr("FORBIDDEN", "Resource not accessible by integration")
			return
		case utf8.RuneCountInString(body) > maxGitHubBody:
			gqlErr("UNPROCESSABLE", fmt.Sprintf("Body is too long (maximum is %d characters)", maxGitHubBody))
			return
		}
		c := g.add(t, key, body, fmt.Sprintf("https://github.com/%s/discussions/%d#discussioncomment-", t.repo, t.number))
		writeJSON(w, map[string]any{"data": map[string]any{"addDiscussionComment": map[string]any{"comment": map[string]any{"id": c.NodeID, "url": c.HTMLURL}}}})
	case strings.Contains(in.Query, "discussion(number"):
		repo := str("owner") + "/" + str("name")
		g.mu.Lock()
		t := g.discussions[fmt.Sprintf("%s/discussions#%d", repo, int64(num))]
		var comments []GitHubAPIComment
		if t != nil {
			comments = append(comments, t.comments...)
		}
		g.mu.Unlock()
		if t == nil {
			writeJSON(w, map[string]any{"data": map[string]any{"repository": map[string]any{"discussion": nil}},
				"errors": []map[string]any{{"type": "NOT_FOUND", "message": fmt.Sprintf("Could not resolve to a Discussion with the number of %d.", int64(num))}}})
			return
		}
		d := map[string]any{"id": t.nodeID}
		if strings.Contains(in.Query, "comments(") {
			// comments(last: 100, before: cursor): cursors are indexes.
			end := len(comments)
			if b := str("before"); b != "" {
				end, _ = strconv.Atoi(b)
				end = min(max(end, 0), len(comments))
			}
			start := max(end-100, 0)
			nodes := []map[string]any{}
			for _, c := range comments[start:end] {
				nodes = append(nodes, map[string]any{"id": c.NodeID, "url": c.HTMLURL, "body": c.Body, "createdAt": c.CreatedAt.Format(time.RFC3339)})
			}
			d["comments"] = map[string]any{"nodes": nodes, "pageInfo": map[string]any{"hasPreviousPage": start > 0, "startCursor": strconv.Itoa(start)}}
		}
		writeJSON(w, map[string]any{"data": map[string]any{"repository": map[string]any{"discussion": d}}})
	default:
		gqlErr("INTERNAL", "the fake answers only the discussion query and addDiscussionComment")
	}
}

// accessToken issues an installation token for a valid App JWT.
func (g *GitHubAPI) accessToken(w http.ResponseWriter, r *http.Request) {
	tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	g.mu.Lock()
	appID, key := g.appID, g.appKey
	g.mu.Unlock()
	if key == nil {
		ghError(w, http.StatusUnauthorized, "A JSON web token could not be decoded")
		return
	}
	iss, err := verifyJWT(tok, key, time.Now())
	if err != nil || iss != appID {
		ghError(w, http.StatusUnauthorized, "'Issuer' claim ('iss') must be an Integer")
		return
	}
	g.mu.Lock()
	g.nextID++
	token := fmt.Sprintf("ghs_fake%d", g.nextID)
	g.issued[token] = true
	g.mu.Unlock()
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(map[string]any{"token": token, "expires_at": time.Now().Add(time.Hour).UTC().Format(time.RFC3339)})
}

// verifyJWT checks an RS256 JSON Web Token and returns its issuer.
func verifyJWT(token string, pub *rsa.PublicKey, now time.Time) (string, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return "", fmt.Errorf("not a JWT")
	}
	enc := base64.RawURLEncoding
	sig, err := enc.DecodeString(parts[2])
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig); err != nil {
		return "", err
	}
	raw, err := enc.DecodeString(parts[1])
	if err != nil {
		return "", err
	}
	var c struct {
		Iat, Exp int64
		Iss      any
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		return "", err
	}
	if now.Unix() > c.Exp || c.Exp-c.Iat > 600 {
		return "", fmt.Errorf("expired, or valid for more than ten minutes")
	}
	return fmt.Sprint(c.Iss), nil
}
