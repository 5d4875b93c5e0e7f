"""The example runner's own tests (make docs-test runs them first): a page whose example no
longer works must fail, and each way of not working must be caught."""
import shutil
import sys
import tempfile
import textwrap
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import examples  # noqa: E402
from examples import Block, PageFailed, check_response, read_page, shape_errors  # noqa: E402


class Shapes(unittest.TestCase):
    def test_shown_keys_must_be_there_with_values_of_their_kind(self):
        actual = {"object": "customer", "id": "019a7", "aml": {"status": "CLEAR"}, "n": 3,
                  "ok": True, "gone": None, "tags": ["a", "b"], "extra": 1}
        self.assertEqual(shape_errors({"object": "customer", "aml": {"status": "CLEAR"}}, actual), [])
        self.assertEqual(shape_errors({"id": "019…", "n": 7, "tags": ["a"], "gone": None}, actual), [])
        self.assertEqual(shape_errors({"tags": "…", "aml": "…"}, actual), [])
        self.assertIn("$.missing: shown, but not in the response", shape_errors({"missing": 1}, actual))
        self.assertTrue(shape_errors({"object": "list"}, actual))
        self.assertTrue(shape_errors({"aml": {"status": "PENDING"}}, actual))
        self.assertTrue(shape_errors({"n": "3"}, actual))
        self.assertTrue(shape_errors({"ok": False}, actual))
        self.assertTrue(shape_errors({"ok": 1}, actual))
        self.assertTrue(shape_errors({"gone": "x"}, actual))
        self.assertTrue(shape_errors({"tags": []}, actual))
        self.assertTrue(shape_errors({"tags": ["a", "b", "c"]}, actual))
        self.assertTrue(shape_errors({"aml": []}, actual))
        self.assertTrue(shape_errors({"n": 1}, {"n": True}))

    def test_an_ellipsis_stands_for_any_text_and_nothing_else_is_loose(self):
        self.assertEqual(shape_errors("key_…", "key_AbC"), [])
        self.assertEqual(shape_errors("…Z", "2026-12-07T10:00:00Z"), [])
        self.assertEqual(shape_errors("a...c", "abbbc"), [])
        self.assertTrue(shape_errors("key_…", "we_AbC"))
        self.assertTrue(shape_errors("a.c", "abc"))  # a dot is a dot
        self.assertTrue(shape_errors("CLEAR", "CLEARED"))


class Responses(unittest.TestCase):
    def response(self, status=201, headers=None, body='{"object":"customer","id":"019a"}'):
        folder = Path(tempfile.mkdtemp())
        self.addCleanup(shutil.rmtree, folder)
        head = f"HTTP/1.1 {status} X\r\n" + "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        (folder / "0001.args").write_text("-X\nPOST\nhttp://127.0.0.1:1/v1/customers\n")
        (folder / "0001.headers").write_text("HTTP/1.1 100 Continue\r\n\r\n" + head + "\r\n")
        (folder / "0001.body").write_text(body)
        return examples.Response(folder, "0001")

    def block(self, text):
        return Block("http", textwrap.dedent(text).lstrip(), 10, [])

    def test_status_headers_and_body_are_each_checked(self):
        answered = self.response(headers={"Location": "/v1/customers/019a"})
        self.assertEqual(answered.what(), "POST http://127.0.0.1:1/v1/customers")
        check_response(self.block("""
            HTTP/1.1 201 Created
            Location: /v1/customers/…

            {"object": "customer"}
            """), answered)
        for wrong, why in [
            ("HTTP/1.1 200 OK\n\n{}", "status: shown 200, got 201"),
            ("HTTP/1.1 201 Created\nIdempotent-Replayed: true\n", "Idempotent-Replayed: shown, not sent"),
            ("HTTP/1.1 201 Created\nLocation: /v1/other/…\n", "header Location"),
            ('HTTP/1.1 201 Created\n\n{"object": "list"}', "$.object"),
            ("HTTP/1.1 201 Created\n\nnot json", "not JSON"),
            ("201 Created", "status line"),
        ]:
            with self.assertRaises(PageFailed, msg=wrong) as caught:
                check_response(self.block(wrong), answered)
            self.assertIn(why, str(caught.exception))

    def test_a_body_that_is_not_json_fails_a_shown_json_body(self):
        with self.assertRaises(PageFailed):
            check_response(self.block('HTTP/1.1 201 Created\n\n{"a": 1}'), self.response(body="<html>"))


class Reading(unittest.TestCase):
    def page(self, text):
        page = Path(tempfile.mkdtemp()) / "page.md"
        self.addCleanup(shutil.rmtree, page.parent)
        page.write_text(text)
        return page

    def refused_at(self, text, line):
        with self.assertRaises(PageFailed) as caught:
            read_page(self.page(text))
        self.assertIn(f"line {line}", str(caught.exception))

    def test_directives_attach_to_the_next_block_and_waits_keep_their_place(self):
        page = self.page(textwrap.dedent("""\
            # A page
            <!-- docs-test: skip needs AWS -->
            ```sh
            make deploy
            ```
            text
            ```sh
            echo hi
            ```
            <!-- docs-test: wait-for "hi" -->
            - a list
              ```python
              print(1)
              ```
            """))
        items = read_page(page)
        self.assertEqual([kind for kind, _, _ in items], ["block", "block", "wait-for", "block"])
        self.assertEqual(items[0][1].directives, ["skip needs AWS"])
        self.assertEqual(items[1][1].directives, [])
        self.assertEqual(items[3][1].lang, "python")
        self.assertEqual(items[3][1].text, "print(1)\n")


    def test_a_skip_not_just_before_a_block_fails_the_page(self):
        self.refused_at("```sh\nmake run\n```\n<!-- docs-test: skip it is the stack -->\n\n"
                        "Then:\n```sh\necho hi\n```\n", 4)

    def test_an_example_in_a_quote_fails_the_page_rather_than_go_unrun(self):
        self.refused_at("> Note:\n>\n> ```sh\n> curl x\n> ```\n", 3)


class FakeStack:
    url = "http://127.0.0.1:3999"
    admin_password = "pw"

    def values(self):
        return {"IC_API_URL": self.url, "IC_ADMIN_PASSWORD": self.admin_password}

    def issue_key(self, name, mode, scopes):
        return f"ic_{mode}_issued_{'+'.join(scopes)}"


class Placeholders(unittest.TestCase):
    def page(self, last_body=None):
        page = examples.Page(Path("x.md"), FakeStack(), Path(tempfile.gettempdir()))
        if last_body is not None:
            class Last:
                body = last_body

                def json(self):
                    import json
                    return json.loads(self.body)
            page.last = Last()
        return page

    def test_each_kind_is_filled_from_where_it_says(self):
        page = self.page('{"id": "cus_1", "data": [{"id": "we_2"}]}')
        script = page.prepare(textwrap.dedent("""\
            export IC_API_URL=http://127.0.0.1:3000
            export IC_ADMIN_PASSWORD=…   # the password make run printed
            export CUSTOMER_ID=…   # the "id" above
            export FIRST=we_…   # the "data.0.id" above
            export IC_API_KEY=ic_test_…   # a key with customers:read aml:read
            curl "$IC_API_URL/v1/customers/$CUSTOMER_ID"
            """))
        self.assertIn("export IC_API_URL='http://127.0.0.1:3999'", script)
        self.assertIn("export IC_ADMIN_PASSWORD='pw'", script)
        self.assertIn("export CUSTOMER_ID='cus_1'", script)
        self.assertIn("export FIRST='we_2'", script)
        self.assertIn("export IC_API_KEY='ic_test_issued_customers:read+aml:read'", script)
        # A field is taken again each time: the newest response's.
        page.last.body = '{"id": "cus_2"}'
        self.assertIn("export CUSTOMER_ID='cus_2'",
                      page.prepare('export CUSTOMER_ID=…   # the new "id" above\n'))

    def test_a_block_runs_in_parts_up_to_each_field_it_takes_from_its_own_responses(self):
        parts = self.page().parts(textwrap.dedent("""\
            export IC_API_URL=http://127.0.0.1:3000
            curl -X POST "$IC_API_URL/v1/org/api-keys"
            export IC_API_KEY=ic_live_…   # its "key"
            export KEY_ID=key_…   # its "id"
            curl "$IC_API_URL/v1/me"
            """))
        self.assertEqual(len(parts), 2)
        self.assertTrue(parts[0].rstrip().endswith('api-keys"'))
        self.assertTrue(parts[1].startswith("export IC_API_KEY"))

    def test_what_nobody_can_fill_fails_the_page(self):
        for text in ['curl "$IC_API_URL/v1/org/api-keys/key_…/revoke"\n',
                     "export MYSTERY=…\n",
                     "export IC_API_KEY=ic_live_…   # your key\n",
                     'export GONE=…   # the "nothing" above\n']:
            with self.assertRaises(PageFailed, msg=text):
                self.page('{"id": "x"}').prepare(text)


class WholePages(unittest.TestCase):
    """Against a real local stack: a page that works passes; each way of breaking fails."""

    @classmethod
    def setUpClass(cls):
        cls.work = Path(tempfile.mkdtemp(prefix="docs-test-self-"))
        cls.stack = examples.Stack(cls.work)

    @classmethod
    def tearDownClass(cls):
        cls.stack.stop()
        shutil.rmtree(cls.work, ignore_errors=True)

    def run_page(self, text):
        folder = Path(tempfile.mkdtemp(dir=self.work))
        path = folder / "page.md"
        path.write_text(textwrap.dedent(text))
        page = examples.Page(path, self.stack, folder)
        page.run()
        return page

    GOOD = """\
        ```sh
        export IC_API_URL=http://127.0.0.1:3000
        export IC_API_KEY=ic_live_…   # a key with customers:read
        curl "$IC_API_URL/v1/me" -H "Authorization: Bearer $IC_API_KEY"
        ```

        ```http
        HTTP/1.1 200 OK

        {"object": "api_key", "scopes": ["customers:read"], "mode": "live"}
        ```
        """

    def test_a_working_page_passes(self):
        self.assertEqual(self.run_page(self.GOOD).examples, 1)

    def test_a_changed_answer_fails(self):
        with self.assertRaises(PageFailed):
            self.run_page(self.GOOD.replace('"mode": "live"', '"mode": "test"'))

    def test_an_unshown_error_fails(self):
        with self.assertRaises(PageFailed) as caught:
            self.run_page(self.GOOD.replace("/v1/me", "/v1/customers/nope").split("```http")[0])
        self.assertIn("answered 404", str(caught.exception))

    def test_a_curl_that_keeps_its_own_headers_and_body_is_still_checked(self):
        with self.assertRaises(PageFailed) as caught:
            self.run_page("""\
                ```sh
                export IC_API_URL=http://127.0.0.1:3000
                curl -s -o /dev/null -w '%{http_code}' "$IC_API_URL/v1/customers/nope"
                ```
                """)
        self.assertIn("answered 401", str(caught.exception))
        page = self.run_page("""\
            ```sh
            export IC_API_URL=http://127.0.0.1:3000
            export IC_API_KEY=ic_live_…   # a key with customers:read
            curl -i -D headers.txt -o body.json "$IC_API_URL/v1/me" -H "Authorization: Bearer $IC_API_KEY"
            grep -q '"object":"api_key"' body.json && grep -qi '^request-id:' headers.txt
            curl -i "$IC_API_URL/v1/me" -H "Authorization: Bearer $IC_API_KEY"
            ```

            ```http
            HTTP/1.1 200 OK
            Request-Id: …

            {"object": "api_key", "scopes": ["customers:read"]}
            ```
            """)
        self.assertEqual(page.examples, 1)

    def test_a_failing_command_fails(self):
        with self.assertRaises(PageFailed):
            self.run_page("```sh\nfalse\necho after\n```\n")

    def test_a_python_example_that_raises_fails(self):
        with self.assertRaises(PageFailed):
            self.run_page("```python\nraise SystemExit(3)\n```\n")

    def test_a_wait_for_what_never_comes_fails(self):
        slow = examples.time.time
        start = slow()
        examples.time.time = lambda: slow() + (0 if slow() - start < 1 else 60)
        try:
            with self.assertRaises(PageFailed):
                self.run_page('```sh\necho something\n```\n<!-- docs-test: wait-for "else" -->\n')
        finally:
            examples.time.time = slow


if __name__ == "__main__":
    unittest.main()
