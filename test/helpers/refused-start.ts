import { startTestServer } from './test-server.ts';

/** The coded error of a start that is refused, or null if the server started (it is then stopped). */
export async function refusal(
  options: Parameters<typeof startTestServer>[0],
): Promise<{ code?: string; message: string } | null> {
  return startTestServer(options).then(
    async (server) => {
      await server.stop();
      return null;
    },
    (error: unknown) => error as { code?: string; message: string },
  );
}
