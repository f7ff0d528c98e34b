import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { CauReportView } from '../cluster/index.ts';
import { escapeHtml, reportsCsv, reportsHtml } from './cau-report-format.ts';

const run: CauReportView = {
  ClusterName: 'hv', RunId: 'r1', RunStartTime: '2026-12-07T03:00:00.000Z', RunDuration: '00:01:02', ClusterResult: 'Failed', Plugin: 'vmhost.Command',
  NodesSucceeded: 1, NodesFailed: 1, Message: 'node n2 failed, "badly"',
  NodeResults: [
    { Node: 'n1', Status: 'Succeeded', Attempts: 1 },
    { Node: 'n2', Status: 'Failed', Attempts: 1, Message: 'exit 3:\n<script>alert(1)</script> & more' },
  ],
};

test('CSV: one row per node of a detailed report, fields with commas, quotes and line breaks quoted', () => {
  const lines = reportsCsv([run]).split('\r\n');
  assert.equal(lines[0], 'ClusterName,RunId,RunStartTime,RunDuration,ClusterResult,Plugin,NodesSucceeded,NodesFailed,ScheduledFor,Message,Node,NodeStatus,NodeAttempts,NodeStartedAt,NodeEndedAt,NodeVersionBefore,NodeVersionAfter,NodeMessage');
  assert.equal(lines[1], 'hv,r1,2026-12-07T03:00:00.000Z,00:01:02,Failed,vmhost.Command,1,1,,"node n2 failed, ""badly""",n1,Succeeded,1,,,,,');
  assert.equal(lines.length, 4, 'a header, two node rows, the final line break (the line break in a quoted field splits no row)');
  assert.equal(lines[2], 'hv,r1,2026-12-07T03:00:00.000Z,00:01:02,Failed,vmhost.Command,1,1,,"node n2 failed, ""badly""",n2,Failed,1,,,,,"exit 3:\n<script>alert(1)</script> & more"');
  const { NodeResults: _, ...summary } = run;
  assert.equal(reportsCsv([summary]).split('\r\n').length, 3, 'a summary report: a header and one row per run');
});

test('HTML: every value escaped, the nodes in their own table', () => {
  assert.equal(escapeHtml('<a href="x">\'&\'</a>'), '&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;');
  const html = reportsHtml([run]);
  assert.ok(!html.includes('<script>'), 'no markup of the updater output survives');
  assert.ok(html.includes('&lt;script&gt;alert(1)&lt;/script&gt; &amp; more'));
  assert.ok(html.includes('node n2 failed, &quot;badly&quot;'));
  assert.equal(html.match(/<table>/g)?.length, 2);
  assert.match(reportsHtml([]), /No updating runs/);
});
