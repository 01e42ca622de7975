/* mcp_prompts.c - the seed server's analyze / code / decompose tools, served as MCP prompts:
 * each renders a user message that asks the model to call rlm_run the right way, instead of
 * being three more tools that all run the same loop. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mcp.h"

struct prompt_arg {
	const char *name;
	const char *description;
	int required;
};

struct prompt {
	const char *name;
	const char *title;
	const char *description;
	struct prompt_arg args[3];
};

static const struct prompt prompts[] = {
        {"analyze",
         "Analyze data with an RLM",
         "Answer a question about a body of data with rlm_run, the data kept in the sandbox "
         "as `context`.",
         {{"question", "what to find out", 1},
          {"data", "the data as text (or leave it out and give rlm_run a context_path)", 0},
          {NULL, NULL, 0}}},
        {"code",
         "Write and test code with an RLM",
         "Have an RLM write code for a description, running and testing it in its sandbox "
         "before it answers.",
         {{"description", "what the code must do", 1},
          {"language", "programming language (default python)", 0},
          {NULL, NULL, 0}}},
        {"decompose",
         "Decompose a task with an RLM",
         "Have an RLM split a complex task into subtasks, solve each (sub-LLM calls from its "
         "code) and combine the results.",
         {{"task", "the complex task", 1},
          {"num_subtasks", "how many subtasks to aim for (default 5)", 0},
          {NULL, NULL, 0}}},
};

#define NPROMPTS (sizeof(prompts) / sizeof(prompts[0]))

json_object *mcp_prompts_list(int fixtures)
{
	json_object *list = json_object_new_array();
	for (size_t i = 0; i < NPROMPTS; i++) {
		json_object *p = json_object_new_object(), *args = json_object_new_array();
		json_object_object_add(p, "name", json_object_new_string(prompts[i].name));
		json_object_object_add(p, "title", json_object_new_string(prompts[i].title));
		json_object_object_add(p, "description",
		                       json_object_new_string(prompts[i].description));
		for (const struct prompt_arg *a = prompts[i].args; a->name; a++) {
			json_object *o = json_object_new_object();
			json_object_object_add(o, "name", json_object_new_string(a->name));
			json_object_object_add(o, "description",
			                       json_object_new_string(a->description));
			json_object_object_add(o, "required", json_object_new_boolean(a->required));
			json_object_array_add(args, o);
		}
		json_object_object_add(p, "arguments", args);
		json_object_array_add(list, p);
	}
	json_object *f = fixtures ? mcp_fixtures_prompts_list() : NULL;
	for (size_t i = 0; i < mcp_array_len(f); i++)
		json_object_array_add(list, json_object_get(json_object_array_get_idx(f, i)));
	json_object_put(f);
	return list;
}

static const char *arg(json_object *args, const char *name, const char *fallback)
{
	json_object *v;
	if (args && json_object_object_get_ex(args, name, &v) &&
	    json_object_is_type(v, json_type_string))
		return json_object_get_string(v);
	return fallback;
}

static char *render(const char *name, json_object *args)
{
	const char *fmt;
	const char *a, *b;
	if (!strcmp(name, "analyze")) {
		a = arg(args, "question", "");
		b = arg(args, "data", NULL);
		fmt = b ? "Use the rlm_run tool to answer this question about the data below. Pass "
		          "the question as `query` and the data, unchanged, as `context` (it stays "
		          "in the sandbox as the variable `context`, so the model can read it with "
		          "code however large it is).\n\nQuestion: %s\n\nData:\n%s"
		        : "Use the rlm_run tool to answer this question. Pass it as `query`, and "
		          "the "
		          "data it is about as `context` (text) or `context_path` (a file on the "
		          "server).\n\nQuestion: %s%s";
		b = b ? b : "";
	} else if (!strcmp(name, "code")) {
		a = arg(args, "description", "");
		b = arg(args, "language", "python");
		fmt = "Use the rlm_run tool with this query: \"Write %2$s code that does the "
		      "following, run it on small examples in the REPL to check it works, and "
		      "SUBMIT(code=..., explanation=...) once it does: %1$s\"";
	} else {
		a = arg(args, "task", "");
		b = arg(args, "num_subtasks", "5");
		fmt = "Use the rlm_run tool with this query: \"Split the following task into about "
		      "%2$s subtasks, solve each one with llm_query (or llm_query_batched) from "
		      "your code, check the partial results, then combine them and "
		      "SUBMIT(answer=..., "
		      "subtasks=[...]): %1$s\" Give it a few more iterations than the number of "
		      "subtasks (max_iterations).";
	}
	int n = snprintf(NULL, 0, fmt, a, b);
	char *text = n >= 0 ? malloc((size_t)n + 1) : NULL;
	if (text)
		snprintf(text, (size_t)n + 1, fmt, a, b);
	return text;
}

json_object *mcp_prompts_get(const char *name, json_object *args, int fixtures, int *code,
                             char *message, size_t message_size)
{
	const struct prompt *p = NULL;
	for (size_t i = 0; i < NPROMPTS; i++)
		if (!strcmp(prompts[i].name, name))
			p = &prompts[i];
	*code = MCP_INVALID_PARAMS;
	int missing = 0;
	json_object *f = !p && fixtures ? mcp_fixtures_prompts_get(name, args, &missing) : NULL;
	if (f || missing) {
		snprintf(message, message_size, "prompt %s: a required argument is missing", name);
		return f;
	}
	if (!p) {
		snprintf(message, message_size, "Unknown prompt: %.200s", name);
		return NULL;
	}
	for (const struct prompt_arg *a = p->args; a->name; a++) {
		if (a->required && !arg(args, a->name, NULL)) {
			snprintf(message, message_size, "prompt %s needs the argument \"%s\"", name,
			         a->name);
			return NULL;
		}
	}
	char *text = render(name, args);
	if (!text) {
		*code = MCP_INTERNAL_ERROR;
		snprintf(message, message_size, "out of memory");
		return NULL;
	}
	json_object *content = json_object_new_object(), *msg = json_object_new_object();
	json_object_object_add(content, "type", json_object_new_string("text"));
	json_object_object_add(content, "text", json_object_new_string(text));
	free(text);
	json_object_object_add(msg, "role", json_object_new_string("user"));
	json_object_object_add(msg, "content", content);
	json_object *messages = json_object_new_array(), *r = json_object_new_object();
	json_object_array_add(messages, msg);
	json_object_object_add(r, "description", json_object_new_string(p->description));
	json_object_object_add(r, "messages", messages);
	return r;
}
